using Aegis.Server.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Aegis.Server.Tests.Ops;

public sealed class PhiScrubbingLoggerTests
{
    private sealed class Capture : ILoggerProvider
    {
        public List<(string Message, Exception? Exception)> Lines { get; } = [];
        public ILogger CreateLogger(string categoryName) => new L(this);
        public void Dispose() { }

        private sealed class L(Capture c) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
            public bool IsEnabled(LogLevel logLevel) => true;
            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                lock (c.Lines) c.Lines.Add((formatter(state, exception) + "|" + state, exception));
            }
        }
    }

    [Fact]
    public void Every_provider_registered_before_AddPhiScrubbing_gets_scrubbed_messages_state_and_exceptions()
    {
        var capture = new Capture();
        var services = new ServiceCollection();
        services.AddLogging(b => b.AddProvider(capture).AddPhiScrubbing());
        using var sp = services.BuildServiceProvider();
        var log = sp.GetRequiredService<ILoggerFactory>().CreateLogger("test");

        log.LogInformation("stored {Name} study {Study} for PatientID={Id}", "DOE^JOHN", "1.2.840.113619.2.55.3.604688119", "583295X");
        log.LogWarning(new InvalidOperationException("bad instance 1.3.6.1.4.1.9328.50.1.12345 of SMITH^ANNA"), "store failed");

        Assert.Equal(2, capture.Lines.Count);
        var (first, _) = capture.Lines[0];
        Assert.Contains("stored [PN] study [UID] for PatientID=[REDACTED]", first, StringComparison.Ordinal);
        foreach (var s in new[] { "DOE", "JOHN", "1.2.840.113619", "583295X" }) Assert.DoesNotContain(s, first, StringComparison.Ordinal);
        var (second, ex) = capture.Lines[1];
        Assert.Null(ex); // the exception travels as scrubbed text, never as an object a sink would print raw
        Assert.Contains("store failed", second, StringComparison.Ordinal);
        Assert.Contains("InvalidOperationException: bad instance [UID] of [PN]", second, StringComparison.Ordinal);
        Assert.DoesNotContain("SMITH", second, StringComparison.Ordinal);
    }
}
