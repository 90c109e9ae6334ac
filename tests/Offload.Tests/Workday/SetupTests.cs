using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Offload.Protocol;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;

namespace Offload.Tests.Workday;

/// <summary>
/// Worktree setup (issue 19 §5): the repository's <c>setup</c> commands run in the new worktree, in the sandbox, before
/// the agent starts; their output is in the log, a failure ends the task failed with its tail, and nothing they make,
/// nor what <c>.worktreeinclude</c> copies, is ever committed. Real daemon, real git, real bubblewrap.
/// </summary>
public sealed class SetupTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new("/var/tmp");

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private void RepoConfig(string json)
    {
        Directory.CreateDirectory(Path.Combine(_h.Repo, ".offload"));
        File.WriteAllText(Path.Combine(_h.Repo, ".offload", "config.json"), json);
        _h.Git("add", "-A");
        _h.Git("commit", "-q", "-m", "offload config");
    }

    [Fact]
    public async Task Setup_RunsBeforeTheAgent_ItsOutputIsLogged_AndNothingItMadeIsEverCommitted()
    {
        File.WriteAllText(Path.Combine(_h.Repo, ".gitignore"), ".env\n");
        File.WriteAllText(Path.Combine(_h.Repo, ".worktreeinclude"), ".env\n");
        File.WriteAllText(Path.Combine(_h.Repo, ".env"), "LOCAL_SETTING=1\n");
        RepoConfig("""
            { "setup": ["mkdir -p deps && echo installed > deps/lib.txt && echo setup-said-hello", "echo generated > gen.txt"] }
            """);
        // The agent's first command reads what setup made: it ran before the agent started.
        var task = await _h.RunTaskAsync(_h.Scenario("uses-setup", Scenario(
            Tool("Bash", new { command = "cat deps/lib.txt gen.txt > seen.txt" }),
            Tool("Bash", new { command = "echo more >> deps/lib.txt" }),
            Final("Recorded what setup made."))), "record the setup");
        var done = await _h.WaitAsync(task.Id);
        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");

        Assert.Equal("installed\ngenerated\n", _h.Git("show", $"{done.Branch}:seen.txt"));
        var committed = _h.Git("ls-tree", "-r", "--name-only", done.Branch).Split('\n');
        Assert.Contains("seen.txt", committed);
        Assert.DoesNotContain(committed, f => f.StartsWith("deps", StringComparison.Ordinal) || f is "gen.txt" or ".env");
        var checkpoints = _h.Git("for-each-ref", "--format=%(refname)", $"refs/offload/{done.Id}/").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(checkpoints);
        foreach (var checkpoint in checkpoints)
        {
            Assert.DoesNotContain(_h.Git("ls-tree", "-r", "--name-only", checkpoint).Split('\n'), f => f.StartsWith("deps", StringComparison.Ordinal) || f == "gen.txt");
        }

        var setup = (await _h.EventsAsync(task.Id)).OfType<SetupRan>().ToList();
        Assert.Equal(2, setup.Count);
        Assert.All(setup, s => Assert.True(s.Passed));
        Assert.Contains("setup-said-hello", setup[0].OutputTail);
        Assert.Null(setup[0].KeptOut);
        Assert.Equal(["deps", "gen.txt"], setup[1].KeptOut);
        var logs = (await _h.OffloadAsync("logs", Id(task))).Stdout;
        Assert.Contains("setup `mkdir -p deps", logs);
        Assert.Contains("never committed: deps, gen.txt", logs);

        // Setup's files are not "work left out of the branch": the merge goes through, and brings none of them.
        var merge = await _h.OffloadAsync("merge", Id(task));
        Assert.True(merge.ExitCode == 0, merge.ToString());
        Assert.True(File.Exists(Path.Combine(_h.Repo, "seen.txt")));
        Assert.False(File.Exists(Path.Combine(_h.Repo, "gen.txt")));
        Assert.False(Directory.Exists(Path.Combine(_h.Repo, "deps")));
    }

    [Fact]
    public async Task FailingSetup_EndsTheTaskFailed_WithTheCommandsOutput_TheAgentNeverRuns_NothingIsCommitted()
    {
        RepoConfig("""{ "setup": ["echo half-installed > partial.txt; echo 'npm ERR! could not resolve'; exit 3", "echo never"] }""");
        var task = await _h.RunTaskAsync(_h.Scenario("never-runs", Scenario(
            Tool("Bash", new { command = "echo agent-ran > agent.txt" }),
            Final("The agent ran."))), "should not start");
        var done = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Failed, done.Status);
        Assert.Contains("setup failed: `echo half-installed > partial.txt; echo 'npm ERR! could not resolve'; exit 3` exited 3", done.Error);
        Assert.Contains("npm ERR! could not resolve", done.Error);
        Assert.Contains($"offload retry {task.Id}", done.Error);
        var events = await _h.EventsAsync(task.Id);
        Assert.Single(events.OfType<SetupRan>()); // the second command never ran
        Assert.Empty(events.OfType<AssistantMessage>());
        Assert.Empty(events.OfType<UsageRecorded>());
        Assert.Equal(done.BaseCommit, _h.Git("rev-parse", done.Branch).Trim());
        Assert.Contains("npm ERR! could not resolve", (await _h.OffloadAsync("logs", Id(task))).Stdout);
    }

    [Fact]
    public async Task Setup_HasNoNetwork_UnlessSetupNetworkIsTrue()
    {
        // A listener on the host's loopback: a sandbox without the network has a loopback of its own, where nothing listens.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port.ToString(CultureInfo.InvariantCulture);
        var connect = $"(exec 3<>/dev/tcp/127.0.0.1/{port} && echo reached-the-host) || echo no-network";

        RepoConfig($$"""{ "setup": ["{{connect}}"] }""");
        var closed = await _h.WaitAsync((await _h.RunTaskAsync(_h.Scenario("net1", Scenario(Final("ok"))), "no network")).Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, closed.Status);
        Assert.Contains("no-network", (await _h.EventsAsync(closed.Id)).OfType<SetupRan>().Single().OutputTail);

        RepoConfig($$"""{ "setup": ["{{connect}}"], "setupNetwork": true }""");
        var accepted = listener.AcceptTcpClientAsync();
        var open = await _h.WaitAsync((await _h.RunTaskAsync(_h.Scenario("net2", Scenario(Final("ok"))), "network")).Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, open.Status);
        Assert.Contains("reached-the-host", (await _h.EventsAsync(open.Id)).OfType<SetupRan>().Single().OutputTail);
        (await accepted).Dispose();
    }

    private static string Id(TaskInfo task) => task.Id.ToString(CultureInfo.InvariantCulture);
}
