using System.Globalization;
using System.Text.Json;
using Offload.Protocol;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;

namespace Offload.Tests.Workday;

/// <summary>
/// <c>offload config get|set|unset</c> (issue 19 §6): one setting by name, refused (and the file untouched) when the key
/// does not exist or the value would not load; a running daemon applies a change without a restart, from the command
/// or from an edit by hand, and keeps its settings when the file stops loading.
/// </summary>
public sealed class ConfigCommandTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new();

    private string ConfigFile => Path.Combine(_h.OffloadHome, "config", "config.json");

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task SetGetUnset_RoundTrip_AndEveryRefusalLeavesTheFileAsItWas()
    {
        var set = await _h.OffloadAsync("config", "set", "limits.maxTurns", "50");
        Assert.True(set.ExitCode == 0, set.ToString());
        Assert.Equal("50", (await _h.OffloadAsync("config", "get", "limits.maxTurns")).Stdout.Trim());
        Assert.Equal("4", (await _h.OffloadAsync("config", "get", "maxparallel")).Stdout.Trim()); // the default; names are matched without case
        Assert.Equal(0, (await _h.OffloadAsync("config", "set", "notifications.webhookUrl", "http://127.0.0.1:9/hook")).ExitCode);
        Assert.Equal(0, (await _h.OffloadAsync("config", "set", "check", "123")).ExitCode); // a setting that holds text keeps it as text
        var file = JsonDocument.Parse(File.ReadAllText(ConfigFile)).RootElement;
        Assert.Equal(50, file.GetProperty("limits").GetProperty("maxTurns").GetInt32());
        Assert.Equal("http://127.0.0.1:9/hook", file.GetProperty("notifications").GetProperty("webhookUrl").GetString());
        Assert.Equal("123", file.GetProperty("check").GetString());

        var before = File.ReadAllText(ConfigFile);
        var unknown = await _h.OffloadAsync("config", "set", "limits.maxTurn", "3");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("there is no setting 'limits.maxTurn'; limits has: maxTurns,", unknown.Stderr);
        var bad = await _h.OffloadAsync("config", "set", "maxParallel", "0");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("maxParallel must be above 0", bad.Stderr);
        var wrongType = await _h.OffloadAsync("config", "set", "maxParallel", "many");
        Assert.Equal(2, wrongType.ExitCode);
        Assert.Contains("maxParallel should be a whole number", wrongType.Stderr);
        var repoOnly = await _h.OffloadAsync("config", "set", "--repo", "maxParallel", "2");
        Assert.Equal(2, repoOnly.ExitCode);
        Assert.Contains("maxParallel is read from your own config only", repoOnly.Stderr);
        Assert.Equal(before, File.ReadAllText(ConfigFile));

        var unset = await _h.OffloadAsync("config", "unset", "limits.maxTurns");
        Assert.True(unset.ExitCode == 0, unset.ToString());
        Assert.Equal("200", (await _h.OffloadAsync("config", "get", "limits.maxTurns")).Stdout.Trim());

        // Comments would be lost by writing the file back: refused, the file as it was.
        File.WriteAllText(ConfigFile, "{\n  // mine\n  \"maxParallel\": 3\n}\n");
        var commented = await _h.OffloadAsync("config", "set", "maxParallel", "5");
        Assert.Equal(2, commented.ExitCode);
        Assert.Contains("has comments", commented.Stderr);
        Assert.Equal("{\n  // mine\n  \"maxParallel\": 3\n}\n", File.ReadAllText(ConfigFile));

        // A repository's settings go to its .offload/config.json, and apply there.
        var repoSet = await _h.OffloadAsync("config", "set", "--repo", "setup", "[\"npm ci\"]");
        Assert.True(repoSet.ExitCode == 0, repoSet.ToString());
        Assert.Equal("[\n  \"npm ci\"\n]", (await _h.OffloadAsync("config", "get", "--repo", "setup")).Stdout.Trim());
        Assert.Equal("[]", (await _h.OffloadAsync("config", "get", "setup")).Stdout.Trim());
        Assert.Equal(Path.Combine(_h.Repo, ".offload", "config.json"), (await _h.OffloadAsync("config", "path", "--repo")).Stdout.Trim());
    }

    [Fact]
    public async Task ARunningDaemon_TakesAChangeWithoutARestart_FromTheCommandAndFromAnEditByHand()
    {
        Assert.Equal(0, (await _h.OffloadAsync("config", "set", "maxParallel", "1")).ExitCode); // no daemon yet: the file only
        var slow = _h.Scenario("slow", Scenario(Final("done", delayMs: 120_000)));
        var first = await _h.RunTaskAsync(slow, "first");
        var second = await _h.RunTaskAsync(slow, "second");
        var pid = await DaemonPidAsync();
        await _h.WaitForEventAsync<StatusChanged>(first.Id, s => s.To == OffloadTaskStatus.Running);
        Assert.Equal(OffloadTaskStatus.Queued, (await _h.ShowAsync(second.Id)).Status); // one slot

        var set = await _h.OffloadAsync("config", "set", "maxParallel", "2");
        Assert.True(set.ExitCode == 0, set.ToString());
        Assert.Contains("the daemon applies it now", set.Stdout);
        await _h.WaitForEventAsync<StatusChanged>(second.Id, s => s.To == OffloadTaskStatus.Running);

        // An edit by hand: the daemon watches the file.
        File.WriteAllText(ConfigFile, """{ "maxParallel": 3 }""");
        await WaitForAsync(async () => await MaxParallelAsync() == 3);

        // A file that stops loading changes nothing: the daemon goes on with what it had, and its log says why.
        File.WriteAllText(ConfigFile, """{ "maxParallel": 0 }""");
        await WaitForAsync(() => Task.FromResult(File.ReadAllText(Path.Combine(_h.OffloadHome, "data", "daemon.log")).Contains("does not load", StringComparison.Ordinal)));
        Assert.Equal(3, await MaxParallelAsync());
        Assert.Equal(pid, await DaemonPidAsync());

        Assert.Equal(0, (await _h.OffloadAsync("cancel", Id(first))).ExitCode);
        Assert.Equal(0, (await _h.OffloadAsync("cancel", Id(second))).ExitCode);
    }

    [Fact]
    public async Task Completion_ScriptsForEachShell_CompleteCommandsOptionsValuesAndTaskNumbers()
    {
        foreach (var shell in new[] { "bash", "zsh", "fish" })
        {
            var script = await _h.OffloadAsync("completion", shell);
            Assert.True(script.ExitCode == 0, script.ToString());
            Assert.Contains("offload __complete --", script.Stdout);
        }

        Assert.Equal(2, (await _h.OffloadAsync("completion", "powershell")).ExitCode);

        // bash itself, with the script sourced, as a user's shell would.
        _h.Env["PATH"] = Path.GetDirectoryName(OffloadHarness.Executable) + ":" + Environment.GetEnvironmentVariable("PATH");
        var bash = await _h.RunAsync("bash", "-c",
            "source <(offload completion bash); COMP_WORDS=(offload wa); COMP_CWORD=1; _offload; echo \"${COMPREPLY[*]}\";"
            + " COMP_WORDS=(offload wait --until ''); COMP_CWORD=3; _offload; echo \"${COMPREPLY[*]}\"");
        Assert.True(bash.ExitCode == 0, bash.ToString());
        Assert.Equal(["wait", "done needs_input"], bash.Stdout.Trim().Split('\n'));

        Assert.Equal(["--max-cost", "--max-turns"], await CandidatesAsync("run", "--max-"));
        Assert.Equal(["get", "path", "set", "unset"], (await CandidatesAsync("config", "")).Where(c => !c.StartsWith('-')));
        Assert.DoesNotContain(await CandidatesAsync("show", ""), c => !c.StartsWith('-')); // no daemon runs: no numbers, and none started for a completion
        Assert.False(File.Exists(_h.SocketPath));

        var task = await _h.RunTaskAsync(_h.Scenario("quick", Scenario(Final("ok"))), "a task to complete");
        Assert.Contains(Id(task), await CandidatesAsync("show", ""));
        Assert.Contains(Id(task), await CandidatesAsync("wait", "--until", "done", ""));
    }

    [Fact]
    public async Task Help_WithNoTopic_ListsTheTopics_AndExits0()
    {
        var help = await _h.OffloadAsync("help");
        Assert.True(help.ExitCode == 0, help.ToString());
        foreach (var topic in new[] { "exit-codes", "statuses", "config", "completion" })
        {
            Assert.Contains(topic, help.Stdout);
            var shown = await _h.OffloadAsync("help", topic);
            Assert.True(shown.ExitCode == 0 && shown.Stdout.Length > 0, shown.ToString());
        }

        Assert.Contains("limits.maxTurns                      200", (await _h.OffloadAsync("help", "config")).Stdout);
        Assert.Contains("12   wait: a task needs input", (await _h.OffloadAsync("help", "exit-codes")).Stdout);
        Assert.Contains("--max-turns", (await _h.OffloadAsync("help", "run")).Stdout);
        var unknown = await _h.OffloadAsync("help", "nonsense");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("`offload help` lists the topics", unknown.Stderr);
    }

    private async Task<string[]> CandidatesAsync(params string[] words) =>
        (await _h.OffloadAsync(["__complete", "--", .. words])).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    private async Task<int> DaemonPidAsync() =>
        JsonDocument.Parse((await _h.OffloadAsync("daemon", "status", "--json")).Stdout).RootElement.GetProperty("pid").GetInt32();

    private async Task<int> MaxParallelAsync() =>
        JsonDocument.Parse((await _h.OffloadAsync("daemon", "status", "--json")).Stdout).RootElement.GetProperty("maxParallel").GetInt32();

    /// <summary>
    /// Asks again until <paramref name="condition"/> holds, failing after 30 s: for what the daemon shows no event of (its
    /// settings in `daemon status`, its log), each ask a real read.
    /// </summary>
    private static async Task WaitForAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the condition did not hold within 30 s");
            await Task.Delay(100);
        }
    }

    private static string Id(TaskInfo task) => task.Id.ToString(CultureInfo.InvariantCulture);
}
