using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Offload.Protocol;
using Offload.Simulator;
using static Offload.Tests.EndToEnd.Turns;
using static Offload.Tests.Resilience.ResilienceKit;

namespace Offload.Tests.EndToEnd;

/// <summary>The whole path from <c>offload run</c> to a finished task with its work on a branch, with real parts.</summary>
public sealed class SpineTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task Run_ReturnsBeforeTheAgentWorks_AndTheTaskEndsSucceededWithItsWorkOnTheBranch()
    {
        var model = _h.Scenario("work", Scenario(
            Tool("Read", new { file_path = "app.py" }, "Reading first.", delayMs: 1500),
            Tool("Edit", new { file_path = "app.py", old_string = "hello", new_string = "hello, world" }),
            Tool("Bash", new { command = "python3 app.py || cat app.py" }),
            Final("Changed the greeting in app.py and ran it.")));
        var statusBefore = _h.Git("status", "--porcelain");
        var headBefore = _h.Git("rev-parse", "HEAD");
        File.WriteAllText(Path.Combine(_h.Repo, "local.txt"), "my uncommitted work\n");

        var run = await _h.OffloadAsync("run", "--json", "--model", model, "change the greeting");
        Assert.Equal(0, run.ExitCode);
        var task = JsonSerializer.Deserialize<TaskInfo>(run.Stdout, OffloadJson.Options)!;
        Assert.Equal(OffloadTaskStatus.Queued, task.Status);
        Assert.Equal($"offload/{task.Id}-change-the-greeting", task.Branch);
        Assert.DoesNotContain(await _h.EventsAsync(task.Id), e => e is ToolCalled); // the first turn is still 1.5 s away

        var done = await _h.WaitAsync(task.Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.Equal("Changed the greeting in app.py and ran it.", done.Summary);
        Assert.Equal(4, done.Turns);

        var logs = await _h.OffloadAsync("logs", task.Id.ToString(CultureInfo.InvariantCulture));
        Assert.Contains("→ Read app.py", logs.Stdout);
        Assert.Contains("→ Edit app.py", logs.Stdout);
        Assert.Contains("→ Bash python3 app.py || cat app.py", logs.Stdout);

        var diff = await _h.OffloadAsync("diff", task.Id.ToString(CultureInfo.InvariantCulture));
        Assert.Contains("-print('hello')", diff.Stdout);
        Assert.Contains("+print('hello, world')", diff.Stdout);
        Assert.Contains("print('hello, world')", _h.Git("show", $"{task.Branch}:app.py"));

        // the user's own tree, index and HEAD are as they were
        Assert.Equal("print('hello')\n", File.ReadAllText(Path.Combine(_h.Repo, "app.py")));
        Assert.Equal(headBefore, _h.Git("rev-parse", "HEAD"));
        Assert.Equal(statusBefore + "?? local.txt\n", _h.Git("status", "--porcelain"));
    }

    [Fact]
    public async Task TwoTasksInTheSameRepository_DoNotSeeEachOthersFiles()
    {
        object Writer(string mine) => Scenario(
            Tool("Write", new { file_path = mine, content = mine + "\n" }),
            Tool("Bash", new { command = "ls" }, delayMs: 800),
            Final("done"));
        var a = await _h.RunTaskAsync(_h.Scenario("a", Writer("from-a.txt")), "task a");
        var b = await _h.RunTaskAsync(_h.Scenario("b", Writer("from-b.txt")), "task b");

        var doneA = await _h.WaitAsync(a.Id);
        var doneB = await _h.WaitAsync(b.Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, doneA.Status);
        Assert.Equal(OffloadTaskStatus.Succeeded, doneB.Status);
        Assert.NotEqual(doneA.Worktree, doneB.Worktree);

        var lsA = (await _h.EventsAsync(a.Id)).OfType<ToolResulted>().Single(r => r.Name == "Bash").Output;
        var lsB = (await _h.EventsAsync(b.Id)).OfType<ToolResulted>().Single(r => r.Name == "Bash").Output;
        Assert.Contains("from-a.txt", lsA);
        Assert.DoesNotContain("from-b.txt", lsA);
        Assert.Contains("from-b.txt", lsB);
        Assert.DoesNotContain("from-a.txt", lsB);

        // the runs overlapped: each one's Bash ran while the other was started
        var startedA = (await _h.EventsAsync(a.Id)).OfType<StatusChanged>().First(s => s.To == OffloadTaskStatus.Running).At;
        var startedB = (await _h.EventsAsync(b.Id)).OfType<StatusChanged>().First(s => s.To == OffloadTaskStatus.Running).At;
        Assert.True(startedB < doneA.FinishedAt && startedA < doneB.FinishedAt, "the two tasks were expected to run at the same time");
        Assert.DoesNotContain("from-b.txt", _h.Git("ls-tree", "-r", "--name-only", doneA.Branch));
        Assert.DoesNotContain("from-a.txt", _h.Git("ls-tree", "-r", "--name-only", doneB.Branch));
    }

    [Fact]
    public async Task LogsFollow_StartedMidRun_SeesEveryEventExactlyOnceInOrder()
    {
        var turns = Enumerable.Range(0, 6).Select(i => Tool("Bash", new { command = $"echo step {i}" }, delayMs: 250)).Append(Final("all steps done"));
        var task = await _h.RunTaskAsync(_h.Scenario("steps", Scenario([.. turns])), "six steps");

        // start following once the run is under way
        await WaitForEventAsync(task.Id, e => e is ToolResulted);
        using var follower = _h.Start("logs", "-f", "--json", task.Id.ToString(CultureInfo.InvariantCulture));
        var lines = new List<string>();
        while (await follower.StandardOutput.ReadLineAsync() is { } line)
        {
            lines.Add(line);
        }

        await follower.WaitForExitAsync();
        var followed = lines.Select(l => JsonSerializer.Deserialize<AgentEvent>(l, OffloadJson.Options)!).ToList();
        var all = await _h.EventsAsync(task.Id);
        Assert.Equal(all.Select(e => e.Seq), followed.Select(e => e.Seq));
        Assert.Equal(Enumerable.Range(1, all.Count).Select(i => (long)i), all.Select(e => e.Seq));
        Assert.IsType<StatusChanged>(followed[^1]);
        Assert.Equal(OffloadTaskStatus.Succeeded, ((StatusChanged)followed[^1]).To);
    }

    [Fact]
    public async Task SseClient_ReconnectingWithLastEventId_SeesEveryEventExactlyOnce()
    {
        var turns = Enumerable.Range(0, 5).Select(i => Tool("Bash", new { command = $"echo {i}" }, delayMs: 200)).Append(Final("ok"));
        var task = await _h.RunTaskAsync(_h.Scenario("sse", Scenario([.. turns])), "sse");
        using var http = _h.SocketClient();
        var seen = new List<long>();

        // first connection: read a few events, then drop it
        using (var first = await OpenSseAsync(http, task.Id, null))
        {
            await foreach (var (id, _) in ReadSseAsync(first))
            {
                seen.Add(id);
                if (seen.Count == 4)
                {
                    break;
                }
            }
        }

        // reconnect with Last-Event-ID and read to the end
        using (var second = await OpenSseAsync(http, task.Id, seen[^1]))
        {
            await foreach (var (id, type) in ReadSseAsync(second))
            {
                seen.Add(id);
                if (type == "task.status" && id > 4 && (await _h.ShowAsync(task.Id)).Status.IsFinal() && id == (await _h.EventsAsync(task.Id)).Count)
                {
                    break;
                }
            }
        }

        var all = await _h.EventsAsync(task.Id);
        Assert.Equal(all.Select(e => e.Seq), seen);
    }

    [Fact]
    public async Task Cancel_DuringALongBashCall_KillsTheProcessTreeAndMarksTheTaskCancelled()
    {
        // The command runs in its own pid namespace (the sandbox), so $! means nothing out here: the child is found by its unique argument.
        var marker = "3" + Random.Shared.Next(100_000, 999_999).ToString(CultureInfo.InvariantCulture) + ".5";
        var model = _h.Scenario("long", Scenario(
            Tool("Bash", new { command = $"sleep {marker} & echo $! > child.pid; sleep 300" }),
            Final("never")));
        var task = await _h.RunTaskAsync(model, "sleep a long time");
        await WaitForEventAsync(task.Id, e => e is ToolCalled);
        var pidFile = Path.Combine(task.Worktree, "child.pid");
        await WaitUntilAsync(() => File.Exists(pidFile) && File.ReadAllText(pidFile).Trim().Length > 0, TimeSpan.FromSeconds(20), "the command never started");
        // the background child may still be a forked shell about to exec sleep: wait for it to show
        await WaitUntilAsync(() => HostPidOf($"sleep {marker}") is not null, TimeSpan.FromSeconds(10), "the background child never started");
        var childPid = HostPidOf($"sleep {marker}")!.Value;
        Assert.True(Directory.Exists($"/proc/{childPid}"));

        var clock = Stopwatch.StartNew();
        var cancel = await _h.OffloadAsync("cancel", task.Id.ToString(CultureInfo.InvariantCulture));
        clock.Stop();
        Assert.Equal(0, cancel.ExitCode);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"cancel took {clock.Elapsed}");

        var done = await _h.ShowAsync(task.Id);
        Assert.Equal(OffloadTaskStatus.Cancelled, done.Status);
        Assert.False(IsAlive(childPid), $"the background child {childPid} survived the cancel");
        Assert.Equal(10, (await _h.OffloadAsync("wait", task.Id.ToString(CultureInfo.InvariantCulture))).ExitCode);
    }

    [Fact]
    public async Task OpenAICompatibleProvider_CompletesAMultiTurnToolTask()
    {
        await using var sim = await SimulatorServer.StartAsync(new SimulatorOptions());
        Directory.CreateDirectory(Path.Combine(_h.OffloadHome, "config"));
        File.WriteAllText(Path.Combine(_h.OffloadHome, "config", "config.json"), JsonSerializer.Serialize(new
        {
            models = new { providers = new Dictionary<string, object> { ["local"] = new { kind = "openai", baseUrl = sim.BaseUrl + "v1", apiKey = "test" } } },
        }));
        var scenario = _h.Scenario("oai", Scenario(
            Tool("Write", new { file_path = "notes.txt", content = "from openai\n" }),
            Tool("Bash", new { command = "cat notes.txt" }),
            Final("Wrote notes.txt.")));

        var task = await _h.RunTaskAsync("local:" + scenario[4..], "write notes");
        var done = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.Equal("Wrote notes.txt.", done.Summary);
        Assert.Contains(sim.Requests, r => r.Api == "openai");
        Assert.Equal("from openai\n", (await _h.EventsAsync(task.Id)).OfType<ToolResulted>().Single(r => r.Name == "Bash").Output.TrimEnd('\n') + "\n");
        Assert.True(done.Usage.InputTokens > 0 && done.Usage.OutputTokens > 0);
    }

    [Fact]
    public async Task OffloadHome_HoldsEveryFileOffloadWrites()
    {
        var task = await _h.RunTaskAsync("sim:demo", "demo");
        var done = await _h.WaitAsync(task.Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);

        Assert.StartsWith(_h.OffloadHome, done.Worktree);
        Assert.True(File.Exists(Path.Combine(_h.OffloadHome, "data", "offload.db")));
        Assert.True(File.Exists(_h.SocketPath));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_h.Home)); // nothing under HOME
        var status = await _h.OffloadAsync("daemon", "status", "--json");
        using var json = JsonDocument.Parse(status.Stdout);
        Assert.Equal(_h.SocketPath, json.RootElement.GetProperty("socket").GetString());
        Assert.True(json.RootElement.GetProperty("pid").GetInt32() > 0);
        Assert.False(string.IsNullOrEmpty(json.RootElement.GetProperty("version").GetString()));
    }

    [Fact]
    public async Task Run_WithNoModelConfigured_SaysHowToGetOne()
    {
        var run = await _h.OffloadAsync("run", "do something");
        Assert.Equal(7, run.ExitCode);
        Assert.Contains("ANTHROPIC_API_KEY", run.Stderr);
        Assert.Contains("--model", run.Stderr);
        Assert.Contains("--model sim:demo", run.Stderr);
        Assert.Contains("no tasks yet", (await _h.OffloadAsync("ls")).Stdout);
    }

    [Fact]
    public async Task Run_ReadsThePromptFromStdinOrAFile()
    {
        var fromStdin = await _h.OffloadInAsync(_h.Repo, "prompt from stdin\nsecond line", "run", "--json", "--model", "sim:echo", "-");
        Assert.Equal(0, fromStdin.ExitCode);
        var promptFile = Path.Combine(_h.Root, "prompt.txt");
        File.WriteAllText(promptFile, "prompt from a file");
        var fromFile = await _h.OffloadAsync("run", "--json", "--model", "sim:echo", "--file", promptFile, "--name", "named task");

        var a = JsonSerializer.Deserialize<TaskInfo>(fromStdin.Stdout, OffloadJson.Options)!;
        var b = JsonSerializer.Deserialize<TaskInfo>(fromFile.Stdout, OffloadJson.Options)!;
        Assert.Equal("prompt from stdin\nsecond line", (await _h.ShowAsync(a.Id)).Prompt);
        Assert.Equal("prompt from a file", (await _h.ShowAsync(b.Id)).Prompt);
        Assert.Equal("named task", b.Title);
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(b.Id)).Status);
    }

    private async Task WaitForEventAsync(long id, Func<AgentEvent, bool> predicate)
    {
        using var http = _h.SocketClient();
        using var stream = await OpenSseAsync(http, id, null);
        await foreach (var (seq, _) in ReadSseAsync(stream))
        {
            var e = (await _h.EventsAsync(id)).First(x => x.Seq == seq);
            if (predicate(e))
            {
                return;
            }
        }

        throw new InvalidOperationException("the event never came");
    }

    private static async Task<Stream> OpenSseAsync(HttpClient http, long id, long? lastEventId)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, $"v1/tasks/{id}/events?follow=1");
        request.Headers.Accept.ParseAdd("text/event-stream");
        if (lastEventId is { } last)
        {
            request.Headers.Add("Last-Event-ID", last.ToString(CultureInfo.InvariantCulture));
        }

        var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        return await response.Content.ReadAsStreamAsync();
    }

    private static async IAsyncEnumerable<(long Id, string Type)> ReadSseAsync(Stream stream)
    {
        using var reader = new StreamReader(stream);
        long id = 0;
        var type = "";
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("id: ", StringComparison.Ordinal))
            {
                id = long.Parse(line[4..], CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                type = line[7..];
            }
            else if (line.Length == 0 && id > 0)
            {
                yield return (id, type);
                id = 0;
            }
        }
    }
}
