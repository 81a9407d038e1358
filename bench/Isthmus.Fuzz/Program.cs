using System.Globalization;
using Isthmus.Fuzz;

// Runs every fuzz target (or one, with --target NAME) for --seconds each (default 60), or for --iterations
// inputs each; prints one line per target with executions, rate, slowest input and any failure (with the
// CsCheck seed that replays it: --seed SEED). Exit code 1 if any target failed.
var seconds = 60.0;
long? iterations = null;
string? only = null;
string? seed = null;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--seconds" or "--minutes" when i + 1 < args.Length:
            seconds = double.Parse(args[++i], CultureInfo.InvariantCulture) * (args[i - 1] == "--minutes" ? 60 : 1);
            break;
        case "--iterations" when i + 1 < args.Length:
            iterations = long.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--target" when i + 1 < args.Length:
            only = args[++i];
            break;
        case "--seed" when i + 1 < args.Length:
            seed = args[++i];
            break;
        case "--list":
            foreach (var t in FuzzTargets.All)
            {
                Console.WriteLine(t.Name);
            }

            return 0;
        default:
            Console.Error.WriteLine("usage: Isthmus.Fuzz [--seconds N | --minutes N | --iterations N] [--target NAME] [--seed SEED] [--list]");
            return 2;
    }
}

var targets = only is null ? FuzzTargets.All : [FuzzTargets.Find(only)];
var failed = 0;
long total = 0;
foreach (var target in targets)
{
    var result = iterations is { } n
        ? FuzzRunner.Run(target, n, seed: seed)
        : FuzzRunner.Run(target, 0, TimeSpan.FromSeconds(seconds), seed);
    total += result.Executions;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{result.Target,-26} {result.Executions,12:N0} execs {result.Executions / Math.Max(0.001, result.Elapsed.TotalSeconds),10:N0}/s  slowest {result.SlowestInput.TotalMilliseconds,8:N1} ms  {(result.Failure is null ? "ok" : "FAILED")}"));
    if (result.Failure is not null)
    {
        failed++;
        Console.WriteLine(result.Failure);
    }
}

Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{targets.Count - failed} passed, {failed} failed ({total:N0} executions)"));
return failed == 0 ? 0 : 1;
