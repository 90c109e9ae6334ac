using System.Globalization;
using Offload.Protocol;
using Offload.Simulator;

namespace Offload.Bench;

/// <summary>
/// The figures that name Claude Code (issue 15, part 6): both sides get the same work from one Simulator (the same
/// multi-turn scenario, the same prompt, the same repository), memory is PSS on both sides and read while every agent
/// is inside a model call, and timings alternate Offload, Claude Code, Offload, … and report the median of all runs.
/// </summary>
public sealed partial class Bench
{
    /// <summary>Tool turns of the shared work; the turn after them is the final answer.</summary>
    private const int WorkTurns = 4;

    /// <summary>Served to Offload as <c>bench:NAME</c> and to Claude Code for any model it names.</summary>
    private static Task<SimulatorServer> WorkSimulatorAsync(Scenario work) =>
        SimulatorServer.StartAsync(new SimulatorOptions
        {
            Scenarios = new Dictionary<string, Scenario>(StringComparer.Ordinal) { [work.Name] = work },
            DefaultScenario = work,
            MaxRecordedBodies = 10_000, // every agent call keeps its body: the counts below read them
        });

    /// <summary>Turn N reads src/moduleN.py: a different file each turn, since Claude Code answers a second Read of an unchanged file with a stub.</summary>
    private static Scenario Work(string name) => Scenarios.Tools(name, Scenarios.ReadModule, WorkTurns, 0);

    /// <summary>An agent's own model call (tools attached), not one of Claude Code's side requests (titles, quota).</summary>
    private static bool IsAgentCall(RecordedRequest r) =>
        r.Api == "anthropic" && r.Path == "/v1/messages" && r.Body.Length > 0 && PromptSize.Of(r.Body).Tools > 0;

    /// <summary>The call after the last tool turn: the agent has done the work and waits for its final answer.</summary>
    private static bool IsLastCall(RecordedRequest r) => r.TurnIndex == WorkTurns && IsAgentCall(r);

    /// <summary>Completes with the <paramref name="count"/>th recorded request (earlier ones included) that matches.</summary>
    private static async Task<RecordedRequest> CountAsync(SimulatorServer sim, Func<RecordedRequest, bool> predicate, int count, TimeSpan timeout, string what)
    {
        var seen = 0;
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            return await sim.WaitForRequestAsync(r => predicate(r) && Interlocked.Increment(ref seen) >= count, cancel.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{what}: {seen} of {count} within {timeout.TotalSeconds:0} s");
        }
    }

    /// <summary>The last call carries every module the work read (Sandbox.MakeRepository): the side did the work, not an error in its place.</summary>
    private static void CheckDidTheWork(RecordedRequest last, string side)
    {
        var missing = Enumerable.Range(0, WorkTurns).Where(i => !last.Body.Contains($"def f{i}(x):", StringComparison.Ordinal)).ToList();
        if (missing.Count > 0)
        {
            throw new InvalidOperationException($"{side}'s last request lacks the text of src/module{string.Join(", src/module", missing)}.py: its Reads failed, so the two sides did not do the same work");
        }
    }

    // ---- time to background ----

    /// <summary>
    /// One Offload daemon and one Claude Code daemon, both warm, one Simulator serving the same work. Runs alternate:
    /// `offload run` (then its task is waited for), `claude --bg` (then its session is waited for until idle), so both
    /// start each call from a quiet state, and load on the machine falls on both alike. Claude Code's sessions are
    /// left idle, not stopped: its daemon exits a few seconds after its last session ends, and every call would then
    /// pay for starting it again.
    /// </summary>
    private async Task<Figure> TimeToBackgroundAsync()
    {
        var work = Work("work");
        await using var sim = await WorkSimulatorAsync(work);
        await using var box = new Sandbox(offload, sim.BaseUrl);
        await box.StartDaemonAsync();
        await using var cc = claude is null ? null : new ClaudeCode(claude, sim.BaseUrl);
        var runs = quick ? 3 : 8;
        var ours = new List<CliRun>();
        var theirs = new List<CliRun>();
        string? claudeError = claude is null ? "claude CLI not found (scripts/test-deps.sh installs it)" : null;
        for (var i = -2; i < runs; i++) // two untimed rounds first: the first `claude --bg` starts its daemon
        {
            var run = await box.OffloadAsync("run", "--model", $"bench:{work.Name}", $"{Scenarios.Prompt} ({i})");
            var id = TaskIdRegex().Match(run.Stdout) is { Success: true } m ? long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)
                : throw new InvalidOperationException($"offload run printed no task id: {run}");
            var task = await box.WaitAsync(id);
            if (task.Status != OffloadTaskStatus.Succeeded || task.Turns != WorkTurns + 1)
            {
                throw new InvalidOperationException($"the Offload task ended {task.Status.ToWire()} after {task.Turns} turns: {task.Error}");
            }

            if (i >= 0)
            {
                ours.Add(run);
            }

            if (cc is null || claudeError is not null)
            {
                continue;
            }

            try
            {
                var since = DateTimeOffset.UtcNow;
                var finished = CountAsync(sim, r => r.At > since && r.Model != work.Name && IsLastCall(r), 1, TimeSpan.FromSeconds(120), "claude --bg sessions at their final answer");
                var bg = await cc.RunAsync("--bg", $"{Scenarios.Prompt} ({i})");
                var session = ClaudeCode.BackgroundId(bg) ?? throw new InvalidOperationException($"claude --bg printed no session id: {bg}");
                CheckDidTheWork(await finished, "Claude Code");
                await cc.WaitIdleAsync(session, TimeSpan.FromSeconds(90));
                if (i >= 0)
                {
                    theirs.Add(bg);
                }
            }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException)
            {
                claudeError = e.Message.ReplaceLineEndings(" ");
                log.WriteLine($"  claude --bg failed: {e}");
            }
        }

        // the daemon's share: the same request without the CLI process around it
        var api = new List<double>();
        for (var i = 0; i < runs; i++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var task = await box.CreateTaskAsync($"bench:{work.Name}", Scenarios.Prompt);
            api.Add(clock.Elapsed.TotalMilliseconds);
            await box.WaitAsync(task.Id);
        }

        var times = ours.Select(r => r.Elapsed.TotalMilliseconds).ToList();
        var median = Stats.Median(times);
        var notes = $"every run, in order: offload run {string.Join(", ", times.Select(t => Stats.N(t, "0.0")))} ms";
        string comparison;
        var ratio = double.NaN;
        if (claudeError is null && theirs.Count > 0)
        {
            var claudeTimes = theirs.Select(r => r.Elapsed.TotalMilliseconds).ToList();
            notes += $"; claude --bg {string.Join(", ", claudeTimes.Select(t => Stats.N(t, "0")))} ms";
            var claudeMedian = Stats.Median(claudeTimes);
            ratio = claudeMedian / median;
            comparison = $"claude --bg median {Stats.Ms(claudeMedian)} (min {Stats.Ms(claudeTimes.Min())}, max {Stats.Ms(claudeTimes.Max())}, n={claudeTimes.Count}; its process used {Stats.Ms(Stats.Median(theirs.Select(r => r.CpuMs)))} CPU) → Offload {Stats.X(ratio)} faster";
        }
        else
        {
            comparison = $"n/a: {claudeError}";
        }

        return new Figure("time to background",
            $"median {Stats.Ms(median)} (min {Stats.Ms(times.Min())}, max {Stats.Ms(times.Max())}, n={times.Count}, alternating with claude --bg); the `offload run` process used {Stats.Ms(Stats.Median(ours.Select(r => r.CpuMs)))} CPU; the daemon answered POST /v1/tasks in {Stats.Ms(Stats.Median(api))}",
            comparison,
            "median < 100 ms; ≥ 9× faster",
            median < 100 && (double.IsNaN(ratio) || ratio >= 9),
            notes);
    }

    // ---- memory per background agent ----

    private static readonly int[] OffloadAgents = [1, 3, 10, 50];
    private static readonly int[] ClaudeAgents = [1, 3];

    /// <summary>
    /// The same work on both sides, measured with every agent held by the Simulator inside its last model call (after
    /// its four Read turns): PSS of the Offload daemon and its children, and the sum of PSS over every process of Claude
    /// Code's temp HOME (its daemon, PTY hosts, pre-warmed spare, sessions).
    /// </summary>
    private async Task<Figure> MemoryAsync()
    {
        var work = Work("busy");
        await using var sim = await WorkSimulatorAsync(work);
        var ours = new SortedDictionary<int, Memory>();
        Memory idle;
        await using (var box = new Sandbox(offload, sim.BaseUrl, maxParallel: 60))
        {
            await box.StartDaemonAsync();
            idle = Procfs.MemoryOf(Procfs.Tree(box.DaemonPid));
            bool Ours(RecordedRequest r) => r.Model == work.Name && IsLastCall(r);
            using var hold = sim.Hold(Ours, OffloadAgents[^1]);
            var created = 0;
            foreach (var target in OffloadAgents)
            {
                var held = CountAsync(sim, Ours, target, TimeSpan.FromSeconds(120), "Offload tasks inside their last model call");
                while (created < target)
                {
                    await box.CreateTaskAsync($"bench:{work.Name}", $"{Scenarios.Prompt} ({++created})");
                }

                await held;
                var status = await box.StatusAsync();
                if (status.Running != target)
                {
                    throw new InvalidOperationException($"{status.Running} tasks running, expected {target}");
                }

                ours[target] = Procfs.MemoryOf(Procfs.Tree(box.DaemonPid));
                log.WriteLine($"  Offload, {target} busy: {Stats.MiB(ours[target].PssMiB)} PSS, {Stats.MiB(ours[target].RssMiB)} RSS ({ours[target].Processes} processes)");
            }

            CheckDidTheWork(sim.Requests.Last(Ours), "Offload");
        }

        var perTask = (ours[50].PssMiB - ours[1].PssMiB) / 49;
        var offloadText = $"daemon PSS idle {Stats.MiB(idle.PssMiB)}; busy: "
            + string.Join(", ", ours.Select(o => $"{o.Key} task{(o.Key == 1 ? "" : "s")} {Stats.MiB(o.Value.PssMiB)}"))
            + $" (RSS {Stats.MiB(ours[1].RssMiB)} → {Stats.MiB(ours[50].RssMiB)}) → {Stats.MiB(perTask)} PSS per busy task";
        const string Goal = "< 10 MiB PSS per task; 10 tasks < 1/10 of one claude --bg agent (PSS)";
        var theirs = claude is null ? null : await ClaudeMemoryAsync(sim, work);
        if (theirs is null)
        {
            return new Figure("memory per background agent", offloadText, "n/a: claude CLI not found", Goal, perTask < 10);
        }

        var one = theirs[1];
        var three = theirs[3];
        var fraction = ours[10].PssMiB / one.PssMiB;
        var claudeText = $"claude --bg PSS, same work, same moment: 1 agent {Stats.MiB(one.PssMiB)} ({one.Processes} processes, RSS {Stats.MiB(one.RssMiB)}), "
            + $"3 agents {Stats.MiB(three.PssMiB)} ({three.Processes} processes, RSS {Stats.MiB(three.RssMiB)}) → {Stats.MiB((three.PssMiB - one.PssMiB) / 2)} PSS per extra agent; "
            + $"Offload with 3 tasks {Stats.N(ours[3].PssMiB / three.PssMiB * 100, "0.#")}% of claude --bg with 3; daemon with 10 tasks = {Stats.N(fraction * 100, "0.#")}% of one claude --bg agent";
        return new Figure("memory per background agent", offloadText, claudeText, Goal, perTask < 10 && fraction < 0.1);
    }

    private async Task<Dictionary<int, Memory>> ClaudeMemoryAsync(SimulatorServer sim, Scenario work)
    {
        var theirs = new Dictionary<int, Memory>();
        await using var cc = new ClaudeCode(claude!, sim.BaseUrl);
        bool Theirs(RecordedRequest r) => r.Model != work.Name && IsLastCall(r);
        using var hold = sim.Hold(Theirs, ClaudeAgents[^1]);
        var started = 0;
        foreach (var target in ClaudeAgents)
        {
            var held = CountAsync(sim, Theirs, target, TimeSpan.FromSeconds(180), "claude --bg sessions inside their last model call");
            while (started < target)
            {
                var bg = await cc.RunAsync("--bg", $"{Scenarios.Prompt} ({++started})");
                if (bg.ExitCode != 0)
                {
                    throw new InvalidOperationException($"claude --bg failed: {bg}");
                }
            }

            await held;
            var processes = await cc.SettledProcessesAsync(TimeSpan.FromSeconds(30));
            theirs[target] = Procfs.MemoryOf(processes);
            log.WriteLine($"  claude --bg, {target} busy: {Stats.MiB(theirs[target].PssMiB)} PSS, {Stats.MiB(theirs[target].RssMiB)} RSS ({theirs[target].Processes} processes)");
        }

        CheckDidTheWork(sim.Requests.Last(Theirs), "Claude Code");
        return theirs;
    }

    // ---- prompt overhead ----

    /// <summary>
    /// The same work on all sides (an Offload task, `claude -p` and a `claude --bg` session, with the same prompt and
    /// scenario): what each sends before any conversation in its first agent call, and every model request's bytes.
    /// </summary>
    private async Task<Figure> PromptOverheadAsync()
    {
        var work = Work("prompt");
        await using var sim = await WorkSimulatorAsync(work);
        await using (var box = new Sandbox(offload, sim.BaseUrl))
        {
            await box.StartDaemonAsync();
            var task = await box.WaitAsync((await box.CreateTaskAsync($"bench:{work.Name}", Scenarios.Prompt)).Id);
            if (task.Turns != WorkTurns + 1)
            {
                throw new InvalidOperationException($"the Offload task ended {task.Status.ToWire()} after {task.Turns} turns: {task.Error}");
            }
        }

        var offloadSide = Sent.Of(sim.Requests);
        CheckDidTheWork(offloadSide.Last, "Offload");
        var offloadText = $"{offloadSide.First.Tokens:N0} tokens of system prompt + {offloadSide.First.Tools} tool definitions ({offloadSide.First.Bytes:N0} bytes) in the first call; {offloadSide}";
        if (claude is null)
        {
            return new Figure("prompt overhead", offloadText, "n/a: claude CLI not found", "report the ratio", null);
        }

        await using var cc = new ClaudeCode(claude, sim.BaseUrl);
        var before = sim.Requests.Count;
        var run = await cc.RunAsync("-p", Scenarios.Prompt, "--output-format", "json");
        if (run.ExitCode != 0)
        {
            throw new InvalidOperationException($"claude -p failed: {run}");
        }

        var headless = Sent.Of(sim.Requests.Skip(before));
        CheckDidTheWork(headless.Last, "claude -p");

        // a background session sends the interactive system prompt; counted up to its final answer (its side requests
        // after it, while idle, are not)
        before = sim.Requests.Count;
        var finished = CountAsync(sim, r => r.Model != work.Name && IsLastCall(r) && r.Body.Contains(Scenarios.Prompt + " (bg)", StringComparison.Ordinal), 1, TimeSpan.FromSeconds(120), "claude --bg session at its final answer");
        var bg = await cc.RunAsync("--bg", Scenarios.Prompt + " (bg)");
        if (bg.ExitCode != 0)
        {
            throw new InvalidOperationException($"claude --bg failed: {bg}");
        }

        await finished;
        var background = Sent.Of(sim.Requests.Skip(before));
        CheckDidTheWork(background.Last, "claude --bg");
        string Compare(string name, Sent theirs) =>
            $"{name}: {theirs.First.Tokens:N0} tokens, {theirs.First.Tools} tools ({theirs.First.Bytes:N0} bytes) in the first call; {theirs} → "
            + $"{Stats.X((double)theirs.First.Tokens / offloadSide.First.Tokens)} as much before any conversation, {Stats.X((double)theirs.AllBytes / offloadSide.AllBytes)} the bytes for the task";
        return new Figure("prompt overhead", offloadText, $"{Compare("claude -p", headless)}; {Compare("claude --bg", background)}",
            "report the ratio", null, $"the same work on each side: one prompt, {WorkTurns} Read turns and a final answer; tokens ≈ bytes / 4, the Simulator's estimate");
    }

    /// <summary>What one side sent the model for one task: its agent calls, and any other model requests.</summary>
    private sealed record Sent(PromptSize First, RecordedRequest Last, int AgentCalls, int OtherCalls, long AllBytes)
    {
        public static Sent Of(IEnumerable<RecordedRequest> requests)
        {
            var model = requests.Where(r => r.Api == "anthropic" && r.Method == "POST" && r.Path == "/v1/messages").ToList();
            var agent = model.Where(IsAgentCall).ToList();
            if (agent.Count == 0)
            {
                throw new InvalidOperationException("no model request with tools was recorded");
            }

            return new Sent(PromptSize.Of(agent[0].Body), agent[^1], agent.Count, model.Count - agent.Count, model.Sum(r => (long)r.BodyBytes));
        }

        public override string ToString() =>
            $"{AgentCalls} agent calls{(OtherCalls > 0 ? $" and {OtherCalls} other model request{(OtherCalls == 1 ? "" : "s")}" : "")}, {AllBytes:N0} bytes of requests in all";
    }
}
