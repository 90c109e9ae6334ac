using Offload.Bench;

// offload-bench --offload PATH [--claude PATH|none] [--quick] [--only background,memory,cpu,logs,many,cli,prompt,search]
// bench/run.sh publishes Offload in Release and passes --offload; see docs/benchmarks.md.
string? offload = null, claudePath = null;
var quick = false;
var only = new HashSet<string>(StringComparer.Ordinal);
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--offload" when i + 1 < args.Length:
            offload = Path.GetFullPath(args[++i]);
            break;
        case "--claude" when i + 1 < args.Length:
            claudePath = args[++i];
            break;
        case "--quick":
            quick = true;
            break;
        case "--only" when i + 1 < args.Length:
            only.UnionWith(args[++i].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            break;
        default:
            Console.Error.WriteLine($"offload-bench: unknown argument '{args[i]}'");
            Console.Error.WriteLine("usage: offload-bench --offload PATH [--claude PATH|none] [--quick] [--only " + string.Join(',', Bench.Names) + "]");
            return 2;
    }
}

if (offload is null || !File.Exists(offload))
{
    Console.Error.WriteLine("offload-bench: --offload must name the Release `offload` executable (bench/run.sh builds it)");
    return 2;
}

if (only.FirstOrDefault(n => !Bench.Names.Contains(n)) is { } unknown)
{
    Console.Error.WriteLine($"offload-bench: unknown figure '{unknown}'; figures: {string.Join(", ", Bench.Names)}");
    return 2;
}

var claude = claudePath == "none" ? null : ClaudeCode.Find(claudePath);
Console.Out.WriteLine($"offload-bench: {offload}{(quick ? " (quick)" : "")}; claude: {claude ?? "not found"}; {Environment.ProcessorCount} CPUs; load {File.ReadAllText("/proc/loadavg").Trim()}");
var clock = System.Diagnostics.Stopwatch.StartNew();
var bench = new Bench(offload, claude, quick, Console.Out);
try
{
    await bench.RunAsync(only);
}
finally
{
    Leftovers.DeleteAll();
}

Report.Print(bench.Figures, Console.Out);
Console.Out.WriteLine();
Console.Out.WriteLine($"offload-bench: {clock.Elapsed.TotalSeconds:0} s; load {File.ReadAllText("/proc/loadavg").Trim()}");
return bench.Figures.Any(f => f.Met is false) ? 1 : 0;
