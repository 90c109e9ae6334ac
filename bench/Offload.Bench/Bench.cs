using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Data.Sqlite;
using Offload.Protocol;
using Offload.Simulator;
using Offload.Store;

namespace Offload.Bench;

/// <summary>The figures of issue 7, each measured against the Release <c>offload</c> and, where named, the real <c>claude</c>.</summary>
public sealed partial class Bench(string offload, string? claude, bool quick, TextWriter log)
{
    private readonly List<Figure> _figures = [];

    public IReadOnlyList<Figure> Figures => _figures;

    public static readonly string[] Names = ["background", "memory", "cpu", "logs", "many", "cli", "prompt", "search", "longmem", "cache", "runs", "ui"];

    public async Task RunAsync(IReadOnlyCollection<string> only)
    {
        bool Want(string name) => only.Count == 0 || only.Contains(name);
        if (Want("background"))
        {
            await Measure("time to background", TimeToBackgroundAsync);
        }

        if (Want("memory"))
        {
            await Measure("memory per background agent", MemoryAsync);
        }

        if (Want("cpu"))
        {
            await Measure("CPU per agent turn", CpuPerTurnAsync);
        }

        if (Want("logs"))
        {
            await Measure("live log latency", LiveLogLatencyAsync);
        }

        if (Want("many"))
        {
            await Measure("many tasks", ManyTasksAsync);
        }

        if (Want("cli"))
        {
            await Measure("CLI latency", CliLatencyAsync);
        }

        if (Want("prompt"))
        {
            await Measure("prompt overhead", PromptOverheadAsync);
        }

        if (Want("search"))
        {
            await Measure("search (100,000 files)", () => SearchBench.RunAsync(quick, log));
        }

        if (Want("longmem"))
        {
            await Measure("memory of long tasks", LongTaskMemoryAsync);
        }

        if (Want("cache"))
        {
            await Measure("prompt cache share", PromptCacheAsync);
        }

        if (Want("runs"))
        {
            await Measure("stats and compare", StatsCompareAsync);
        }

        if (Want("ui"))
        {
            await Measure("dashboard", DashboardAsync);
        }
    }

    private async Task Measure(string name, Func<Task<Figure>> figure)
    {
        log.WriteLine($"· {name} …");
        var clock = Stopwatch.StartNew();
        try
        {
            var f = await figure();
            _figures.Add(f);
            log.WriteLine($"  {f.Offload} | vs {f.Comparison} | goal {f.Goal} | {(f.Met is false ? "MISSED" : "ok")} ({clock.Elapsed.TotalSeconds:0.0} s)");
        }
        catch (Exception e)
        {
            _figures.Add(new Figure(name, "error", "", "", false, e.Message.ReplaceLineEndings(" ")));
            log.WriteLine($"  failed: {e}");
        }
    }

    private static Task<SimulatorServer> SimulatorAsync(params Scenario[] scenarios) =>
        SimulatorServer.StartAsync(new SimulatorOptions
        {
            Scenarios = scenarios.ToDictionary(s => s.Name, StringComparer.Ordinal),
            MaxRecordedBodies = 4,
        });

    // ---- CPU per agent turn ----

    private async Task<Figure> CpuPerTurnAsync()
    {
        var turns = quick ? 300 : 1000;
        await using var sim = await SimulatorAsync(Scenarios.Tools("cpu", Scenarios.Glob, turns, 0), Scenarios.Tools("warm", Scenarios.Glob, 20, 0));
        await using var box = new Sandbox(offload, sim.BaseUrl);
        await box.StartDaemonAsync();
        await box.WaitAsync((await box.CreateTaskAsync("bench:warm", Scenarios.Prompt)).Id); // start-up work is not per turn

        var before = Procfs.CpuMs(box.DaemonPid);
        var clock = Stopwatch.StartNew();
        var task = await box.WaitAsync((await box.CreateTaskAsync("bench:cpu", Scenarios.Prompt)).Id);
        var wall = clock.Elapsed.TotalMilliseconds;
        var cpu = Procfs.CpuMs(box.DaemonPid) - before;
        if (task.Status != OffloadTaskStatus.Succeeded)
        {
            throw new InvalidOperationException($"the CPU task ended {task.Status.ToWire()}: {task.Error}");
        }

        var perTurn = cpu / task.Turns;
        return new Figure("CPU per agent turn",
            $"{Stats.Ms(perTurn)} CPU per turn ({task.Turns} turns of Glob: daemon {Stats.N(cpu / 1000, "0.00")} s CPU in {Stats.N(wall / 1000, "0.00")} s wall, {Stats.Ms(wall / task.Turns)} wall per turn)",
            "—", "< 2 ms CPU per turn", perTurn < 2);
    }

    // ---- live log latency ----

    private async Task<Figure> LiveLogLatencyAsync()
    {
        var turns = quick ? 60 : 200;
        await using var sim = await SimulatorAsync(Scenarios.Tools("live", Scenarios.Read, turns, 20, firstDelayMs: 1500));
        await using var box = new Sandbox(offload, sim.BaseUrl);
        await box.StartDaemonAsync();
        var task = await box.CreateTaskAsync("bench:live", Scenarios.Prompt);

        using var client = Process.Start(box.StartInfo("logs", "-f", "--json", task.Id.ToString(CultureInfo.InvariantCulture)))!;
        client.StandardInput.Close();
        var latencies = new List<double>();
        DateTimeOffset? connected = null;
        while (await client.StandardOutput.ReadLineAsync() is { } line)
        {
            var received = DateTimeOffset.UtcNow;
            connected ??= received; // the first line is the replayed backlog: count only events appended after it
            var e = JsonSerializer.Deserialize<AgentEvent>(line, OffloadJson.Options)!;
            if (e.At > connected)
            {
                latencies.Add((received - e.At).TotalMilliseconds);
            }
        }

        await client.WaitForExitAsync();
        if (latencies.Count < turns)
        {
            throw new InvalidOperationException($"only {latencies.Count} live events seen for {turns} turns; stderr: {await client.StandardError.ReadToEndAsync()}");
        }

        var p99 = Stats.Percentile(latencies, 99);
        return new Figure("live log latency",
            $"p50 {Stats.Ms(Stats.Median(latencies))}, p99 {Stats.Ms(p99)}, max {Stats.Ms(latencies.Max())} over {latencies.Count} events (`offload logs -f --json`)",
            "—", "p99 < 50 ms", p99 < 50);
    }

    // ---- many tasks ----

    /// <summary>
    /// The round is repeated (3 times, once with --quick), each with its own daemon, repository and Simulator, and the
    /// median round is the figure: one round's wall time moves a lot on a shared 2-CPU machine.
    /// </summary>
    private async Task<Figure> ManyTasksAsync()
    {
        var rounds = new List<(double Total, int Problems, Figure Figure)>();
        for (var round = 1; round <= (quick ? 1 : 3); round++)
        {
            rounds.Add(await ManyTasksRoundAsync());
            log.WriteLine($"  round {round}: {rounds[^1].Total / 1000:0.00} s");
        }

        var ordered = rounds.OrderBy(r => r.Total).ToList();
        var median = ordered[ordered.Count / 2].Figure;
        return rounds.Count == 1
            ? median
            : median with
            {
                Offload = $"median of {rounds.Count} rounds: {median.Offload} (rounds: {string.Join(", ", rounds.Select(r => Stats.N(r.Total / 1000, "0.00") + " s"))})",
                Met = median.Met == true && rounds.All(r => r.Problems == 0), // time: the median round; nothing lost: every round
            };
    }

    private async Task<(double Total, int Problems, Figure Figure)> ManyTasksRoundAsync()
    {
        const int Count = 100, Turns = 10, DelayMs = 200;
        await using var sim = await SimulatorAsync(Scenarios.Tools("many", Scenarios.Glob, Turns - 1, DelayMs));
        await using var box = new Sandbox(offload, sim.BaseUrl, maxParallel: 100);
        await box.StartDaemonAsync();

        // one task alone first: warms the daemon, and its tool time (not inflated by 99 neighbours) goes into the ideal
        var alone = await box.WaitAsync((await box.CreateTaskAsync("bench:many", Scenarios.Prompt)).Id);
        var aloneToolMs = ToolTime(await box.EventsAsync(alone.Id));

        var cpuBefore = Procfs.CpuMs(box.DaemonPid);
        var childrenBefore = Procfs.ChildrenCpuMs(box.DaemonPid);
        var benchBefore = Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds;
        var clock = Stopwatch.StartNew();
        var created = await Task.WhenAll(Enumerable.Range(1, Count).Select(i => box.CreateTaskAsync("bench:many", $"{Scenarios.Prompt} ({i})")));
        var submitted = clock.Elapsed.TotalMilliseconds;
        var finished = await Task.WhenAll(created.Select(t => box.WaitAsync(t.Id)));
        var total = clock.Elapsed.TotalMilliseconds;
        var daemonCpu = Procfs.CpuMs(box.DaemonPid) - cpuBefore;
        var childrenCpu = Procfs.ChildrenCpuMs(box.DaemonPid) - childrenBefore;
        var benchCpu = Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds - benchBefore;

        var problems = new List<string>();
        var toolMs = new List<double>();
        var runMs = new List<double>();
        foreach (var t in finished)
        {
            if (t.Status != OffloadTaskStatus.Succeeded || t.Turns != Turns)
            {
                problems.Add($"task {t.Id} {t.Status.ToWire()} after {t.Turns} turns ({t.Error})");
            }

            var events = await box.EventsAsync(t.Id);
            if (!events.Select(e => e.Seq).SequenceEqual(Enumerable.Range(1, events.Count).Select(i => (long)i)))
            {
                problems.Add($"task {t.Id} has a gap in its seqs");
            }

            toolMs.Add(ToolTime(events));
            runMs.Add(RunMs(t));
        }

        var ideal = Turns * DelayMs + aloneToolMs;
        var over = total / ideal - 1;
        return (total, problems.Count, new Figure("many tasks",
            $"{Count} tasks × {Turns} turns in {Stats.N(total / 1000, "0.00")} s (ideal {Stats.N(ideal / 1000, "0.00")} s: +{Stats.N(over * 100, "0")}%); "
            + $"one task alone ran {Stats.N(RunMs(alone) / 1000, "0.00")} s; submitting took {Stats.N(submitted / 1000, "0.00")} s; the daemon used {Stats.N(daemonCpu / 1000, "0.0")} s CPU ({Stats.Ms(daemonCpu / (Count * Turns))} per turn), its git processes {Stats.N(childrenCpu / 1000, "0.0")} s, the Simulator and this client {Stats.N(benchCpu / 1000, "0.0")} s; one task ran median {Stats.N(Stats.Median(runMs) / 1000, "0.00")} s, max {Stats.N(runMs.Max() / 1000, "0.00")} s; "
            + (problems.Count == 0 ? "all succeeded, seqs gapless" : $"{problems.Count} problems"),
            "—", "within 20% of ideal; nothing lost", over <= 0.2 && problems.Count == 0,
            string.Join("; ", problems.Take(5))));
    }

    /// <summary>Time between each tool call and its result in the journal.</summary>
    private static double ToolTime(List<AgentEvent> events)
    {
        var calls = events.OfType<ToolCalled>().ToDictionary(c => c.CallId, c => c.At);
        return events.OfType<ToolResulted>().Sum(r => (r.At - calls[r.CallId]).TotalMilliseconds);
    }

    private static double RunMs(TaskInfo t) => ((t.FinishedAt ?? t.CreatedAt) - (t.StartedAt ?? t.CreatedAt)).TotalMilliseconds;

    // ---- CLI latency ----

    private async Task<Figure> CliLatencyAsync()
    {
        const int Stored = 10_000;
        await using var sim = await SimulatorAsync(Scenarios.Final());
        await using var box = new Sandbox(offload, sim.BaseUrl);
        var fill = Stopwatch.StartNew();
        await FillStoreAsync(box, Stored);
        log.WriteLine($"  stored {Stored} tasks in {fill.Elapsed.TotalSeconds:0.0} s");
        await box.StartDaemonAsync();
        var real = await box.WaitAsync((await box.CreateTaskAsync("bench:final", Scenarios.Prompt)).Id);
        var id = real.Id.ToString(CultureInfo.InvariantCulture);

        var runs = quick ? 10 : 30;
        async Task<(double Median, double Cpu)> TimeAsync(params string[] args)
        {
            await box.OffloadAsync(args); // warm the page cache
            var times = new List<double>();
            var cpus = new List<double>();
            for (var i = 0; i < runs; i++)
            {
                var run = await box.OffloadAsync(args);
                if (run.ExitCode != 0)
                {
                    throw new InvalidOperationException($"offload {string.Join(' ', args)} failed: {run}");
                }

                times.Add(run.Elapsed.TotalMilliseconds);
                cpus.Add(run.CpuMs);
            }

            return (Stats.Median(times), Stats.Median(cpus));
        }

        var ls = await TimeAsync("ls");
        var show = await TimeAsync("show", id);
        var version = await TimeAsync("--version");
        return new Figure("CLI latency",
            $"`offload ls` median {Stats.Ms(ls.Median)} ({Stats.Ms(ls.Cpu)} CPU), `offload show {id}` median {Stats.Ms(show.Median)} ({Stats.Ms(show.Cpu)} CPU) with {Stored + 1:N0} tasks stored (n={runs} each)",
            $"`offload --version` (process start, no daemon) median {Stats.Ms(version.Median)} ({Stats.Ms(version.Cpu)} CPU)",
            "median < 80 ms", ls.Median < 80 && show.Median < 80);
    }

    /// <summary>
    /// Stores finished tasks before the daemon starts: rows and <c>task.created</c> events through
    /// <see cref="SqliteTaskStore"/>, then, in one transaction, the status and finish that a real run would have journaled.
    /// </summary>
    private static async Task FillStoreAsync(Sandbox box, int count)
    {
        using (var store = SqliteTaskStore.Open(box.Database))
        {
            var head = (await Sandbox.RunTimedAsync("git", ["rev-parse", "HEAD"], box.Repo, box.Env)).Stdout.Trim();
            // one transaction per task through the store would be 10,000 fsyncs; the store's schema is created by it
            await store.CreateTaskAsync(new NewTask("seed", "seed", "bench:final", "builtin", box.Repo, "main", head,
                id => ($"offload/{id}-seed", Path.Combine(box.OffloadHome, "data", "worktrees", $"{id}-seed"))));
        }

        using var db = new SqliteConnection($"Data Source={box.Database}");
        db.Open();
        using var tx = db.BeginTransaction();
        using var copy = db.CreateCommand();
        copy.Transaction = tx;
        copy.CommandText = """
            INSERT INTO tasks (title, prompt, status, model, engine, repo_path, base_ref, base_commit, branch, worktree, summary,
                               turns, input_tokens, output_tokens, attempt, last_seq, created_at, started_at, finished_at)
            SELECT 'stored task ' || $n, prompt, 'succeeded', model, engine, repo_path, base_ref, base_commit,
                   'offload/' || (1 + $n) || '-stored', worktree, 'Done: nothing to change.', 3, 12000, 300, 1, 1, created_at, created_at, created_at
            FROM tasks WHERE id = 1
            """;
        var n = copy.Parameters.Add("$n", SqliteType.Integer);
        for (var i = 1; i < count; i++)
        {
            n.Value = i;
            copy.ExecuteNonQuery();
        }

        using var events = db.CreateCommand();
        events.Transaction = tx;
        events.CommandText = "INSERT INTO events (task_id, seq, attempt, type, at, data) SELECT t.id, 1, 0, e.type, e.at, replace(e.data, '\"taskId\":1,', '\"taskId\":' || t.id || ',') FROM tasks t, events e WHERE t.id > 1 AND e.task_id = 1 AND e.seq = 1";
        events.ExecuteNonQuery();
        using var finish = db.CreateCommand();
        finish.Transaction = tx;
        finish.CommandText = "UPDATE tasks SET status = 'succeeded', started_at = created_at, finished_at = created_at WHERE id = 1";
        finish.ExecuteNonQuery();
        tx.Commit();
    }

    [GeneratedRegex(@"task (\d+)")]
    private static partial Regex TaskIdRegex();
}

/// <summary>The size of what a client sends before any conversation: its system prompt and tool definitions.</summary>
public readonly record struct PromptSize(int Bytes, int Tools)
{
    public int Tokens => Bytes / 4;

    public static PromptSize Of(string body)
    {
        using var doc = JsonDocument.Parse(body);
        var root = doc.RootElement;
        var bytes = 0;
        var tools = 0;
        if (root.TryGetProperty("system", out var system))
        {
            bytes += System.Text.Encoding.UTF8.GetByteCount(system.GetRawText());
        }

        if (root.TryGetProperty("tools", out var list) && list.ValueKind == JsonValueKind.Array)
        {
            bytes += System.Text.Encoding.UTF8.GetByteCount(list.GetRawText());
            tools = list.GetArrayLength();
        }

        return new PromptSize(bytes, tools);
    }
}
