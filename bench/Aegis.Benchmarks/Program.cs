using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/Aegis.Benchmarks -- --filter '*' [--job short]
BenchmarkSwitcher.FromAssembly(typeof(Aegis.Benchmarks.Part10Benchmarks).Assembly).Run(args);
