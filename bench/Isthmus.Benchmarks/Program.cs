using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/Isthmus.Benchmarks -- --filter '*'
BenchmarkSwitcher.FromAssembly(typeof(Isthmus.Benchmarks.LegHeaderBenchmarks).Assembly).Run(args);
