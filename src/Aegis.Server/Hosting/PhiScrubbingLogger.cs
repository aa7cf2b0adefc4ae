using Aegis.Archive.Audit;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Aegis.Server.Hosting;

/// <summary>
/// Logs never carry PHI by default: every logger provider registered so far is wrapped so that each formatted message,
/// with its exception text, goes through <see cref="PhiScrubber.Scrub"/> (UIDs, PN values, patient keys, long digit runs)
/// before any sink sees it. Structured state is dropped on the way (a JSON formatter would otherwise print the raw
/// arguments); operators get the readable, scrubbed line. The audit trail is where identities belong.
/// </summary>
public static class PhiScrubbingLogging
{
    /// <summary>Wraps every <see cref="ILoggerProvider"/> registered before this call; call it after the last provider is added.</summary>
    public static ILoggingBuilder AddPhiScrubbing(this ILoggingBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var providers = builder.Services.Where(d => d.ServiceType == typeof(ILoggerProvider)).ToList();
        foreach (var d in providers)
        {
            builder.Services.Remove(d);
            builder.Services.Add(ServiceDescriptor.Singleton<ILoggerProvider>(sp => new PhiScrubbingLoggerProvider(Create(sp, d))));
        }
        return builder;
    }

    private static ILoggerProvider Create(IServiceProvider sp, ServiceDescriptor d) =>
        (ILoggerProvider)(d.ImplementationInstance
            ?? d.ImplementationFactory?.Invoke(sp)
            ?? ActivatorUtilities.CreateInstance(sp, d.ImplementationType ?? throw new InvalidOperationException($"cannot wrap logger provider {d}")));
}

/// <summary>An <see cref="ILoggerProvider"/> decorator that scrubs PHI from every message its inner provider writes.</summary>
public sealed class PhiScrubbingLoggerProvider(ILoggerProvider inner) : ILoggerProvider, ISupportExternalScope
{
    public ILogger CreateLogger(string categoryName) => new ScrubbingLogger(inner.CreateLogger(categoryName));

    public void SetScopeProvider(IExternalScopeProvider scopeProvider)
    {
        if (inner is ISupportExternalScope s) s.SetScopeProvider(scopeProvider);
    }

    public void Dispose() => inner.Dispose();

    private sealed class ScrubbingLogger(ILogger inner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!inner.IsEnabled(logLevel)) return;
            string message = formatter(state, exception);
            // Exception text (messages, paths, stack) can quote data: it is scrubbed as part of the line.
            if (exception is not null) message = message + Environment.NewLine + exception;
            inner.Log(logLevel, eventId, PhiScrubber.Scrub(message), null, static (s, _) => s);
        }
    }
}
