using System.Globalization;
using System.Text.Json;
using Offload.Protocol;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;

namespace Offload.Tests.Review;

/// <summary><c>offload discard</c> and <c>offload gc</c>: work goes only when the user says so or it is merged.</summary>
public sealed class DiscardGcTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private static string Id(TaskInfo t) => t.Id.ToString(CultureInfo.InvariantCulture);

    private async Task<TaskInfo> FinishedTaskAsync(string name, string file)
    {
        var model = _h.Scenario(name, Scenario(
            Tool("Write", new { file_path = file, content = string.Concat(Enumerable.Repeat(name + " line\n", 2000)) }),
            Final($"Wrote {file}.")));
        var task = await _h.RunTaskAsync(model, $"write {file}");
        var done = await _h.WaitAsync(task.Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        return done;
    }

    private bool BranchExists(string branch) => _h.Git("branch", "--list", branch).Trim().Length > 0;

    [Fact]
    public async Task Discard_OffATerminalWithoutYes_RefusesAndKeepsTheWork()
    {
        var task = await FinishedTaskAsync("keep", "keep.txt");

        var discard = await _h.OffloadAsync("discard", Id(task));

        Assert.Equal(2, discard.ExitCode);
        Assert.Contains($"offload discard {task.Id} --yes", discard.Stderr);
        Assert.True(Directory.Exists(task.Worktree));
        Assert.True(BranchExists(task.Branch));
        Assert.False((await _h.ShowAsync(task.Id)).Discarded);
    }

    [Theory]
    [InlineData("n", false)]
    [InlineData("y", true)]
    public async Task Discard_OnATerminal_AsksFirst(string answer, bool discarded)
    {
        var task = await FinishedTaskAsync("asked", "asked.txt");

        // util-linux `script` gives offload a pseudo-terminal; answer once the question is on screen
        var info = new System.Diagnostics.ProcessStartInfo("script")
        {
            WorkingDirectory = _h.Repo,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "-qec", $"'{OffloadHarness.Executable}' discard {task.Id}", "/dev/null" })
        {
            info.ArgumentList.Add(a);
        }

        foreach (var (key, value) in _h.Env)
        {
            if (value is null)
            {
                info.Environment.Remove(key);
            }
            else
            {
                info.Environment[key] = value;
            }
        }

        using var script = System.Diagnostics.Process.Start(info)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var screen = new System.Text.StringBuilder();
        var buffer = new char[256];
        while (!screen.ToString().Contains("[y/N]", StringComparison.Ordinal))
        {
            var n = await script.StandardOutput.ReadAsync(buffer, timeout.Token);
            Assert.True(n > 0, $"offload ended before asking: {screen}");
            screen.Append(buffer, 0, n);
        }

        Assert.Contains($"Discard task {task.Id} (succeeded) \"write asked.txt\"?", screen.ToString());
        Assert.Contains($"branch {task.Branch} (1 file changed)", screen.ToString());
        await script.StandardInput.WriteAsync(answer + "\n");
        await script.StandardInput.FlushAsync();
        screen.Append(await script.StandardOutput.ReadToEndAsync(timeout.Token));
        await script.WaitForExitAsync(timeout.Token);

        Assert.Equal(discarded ? 0 : 1, script.ExitCode);
        Assert.Contains(discarded ? $"discarded task {task.Id}" : "nothing was discarded", screen.ToString());
        Assert.Equal(discarded, (await _h.ShowAsync(task.Id)).Discarded);
        Assert.Equal(!discarded, Directory.Exists(task.Worktree));
        Assert.Equal(!discarded, BranchExists(task.Branch));
    }

    [Fact]
    public async Task Discard_RemovesWorktreeAndBranch_LsHidesItUnlessAll()
    {
        var task = await FinishedTaskAsync("gone", "gone.txt");
        var before = RepoState.Of(_h);

        var discard = await _h.OffloadAsync("discard", "--yes", "--json", Id(task));

        Assert.True(discard.ExitCode == 0, discard.ToString());
        var response = JsonSerializer.Deserialize<DiscardResponse>(discard.Stdout, OffloadJson.Options)!;
        Assert.True(response.BytesFreed > 2000 * 10, $"freed {response.BytesFreed} bytes");
        Assert.False(Directory.Exists(task.Worktree));
        Assert.False(BranchExists(task.Branch));
        Assert.Equal("", _h.Git("for-each-ref", $"refs/offload/{task.Id}/"));
        before.AssertSame(RepoState.Of(_h));
        Assert.DoesNotContain($"write gone.txt", (await _h.OffloadAsync("ls")).Stdout);
        Assert.Contains("write gone.txt", (await _h.OffloadAsync("ls", "--all")).Stdout);
        Assert.True((await _h.ShowAsync(task.Id)).Discarded);

        var again = await _h.OffloadAsync("merge", Id(task));
        Assert.Equal(4, again.ExitCode);
        Assert.Contains("was discarded", again.Stderr);
    }

    [Fact]
    public async Task Discard_AlsoDeletesTheFullOutputsOfCutToolResults()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("loud", Scenario(Tool("Bash", new { command = "seq 1 40000" }), Final("Counted."))), "count a lot");
        await _h.WaitAsync(task.Id);
        var cut = (await _h.EventsAsync(task.Id)).OfType<ToolResulted>().Single();
        Assert.True(cut.Truncated && File.Exists(cut.FullOutputPath), "the output was expected to be cut and kept in full");
        var full = new FileInfo(cut.FullOutputPath!).Length;

        var discard = await _h.OffloadAsync("discard", "--yes", "--json", Id(task));

        var response = JsonSerializer.Deserialize<DiscardResponse>(discard.Stdout, OffloadJson.Options)!;
        Assert.False(File.Exists(cut.FullOutputPath));
        Assert.True(response.BytesFreed >= full, $"freed {response.BytesFreed} bytes, the full output alone was {full}");
    }

    [Fact]
    public async Task Discard_OfARunningTask_RefusesWithoutForce_AndForceCancelsItFirst()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("slow", Scenario(
            Tool("Write", new { file_path = "half.txt", content = "half done\n" }),
            Tool("Bash", new { command = "sleep 60" }),
            Final("done"))), "a slow one");
        await WaitForEventAsync(task.Id, e => e is ToolCalled { Name: "Bash" });

        var refused = await _h.OffloadAsync("discard", "--yes", Id(task));
        Assert.Equal(4, refused.ExitCode);
        Assert.Contains("--force", refused.Stderr);
        Assert.Equal(OffloadTaskStatus.Running, (await _h.ShowAsync(task.Id)).Status);
        Assert.True(Directory.Exists(task.Worktree));

        var forced = await _h.OffloadAsync("discard", "--yes", "--force", Id(task));
        Assert.True(forced.ExitCode == 0, forced.ToString());
        Assert.Contains("cancelled first", forced.Stdout);
        var shown = await _h.ShowAsync(task.Id);
        Assert.Equal(OffloadTaskStatus.Cancelled, shown.Status);
        Assert.True(shown.Discarded);
        Assert.False(Directory.Exists(task.Worktree));
        Assert.False(BranchExists(task.Branch));
    }

    [Fact]
    public async Task Gc_FreesMergedWorktrees_NeverUnmergedWork_AndReportsTheBytes()
    {
        var merged = await FinishedTaskAsync("merged", "merged.txt");
        var unmerged = await FinishedTaskAsync("unmerged", "unmerged.txt");
        var mergedThenDirty = await FinishedTaskAsync("dirty", "dirty.txt");
        Assert.Equal(0, (await _h.OffloadAsync("merge", Id(merged))).ExitCode);
        Assert.Equal(0, (await _h.OffloadAsync("merge", Id(mergedThenDirty))).ExitCode);
        File.WriteAllText(Path.Combine(mergedThenDirty.Worktree, "edited-by-hand.txt"), "mine\n");
        var mergedBytes = DiskUsage(merged.Worktree);
        var head = _h.Git("rev-parse", "HEAD").Trim();

        var gc = await _h.OffloadAsync("gc", "--json");

        Assert.True(gc.ExitCode == 0, gc.ToString());
        var response = JsonSerializer.Deserialize<GcResponse>(gc.Stdout, OffloadJson.Options)!;
        var removed = Assert.Single(response.Removed);
        Assert.Equal(merged.Id, removed.Id);
        Assert.Equal("merged into main (squash)", removed.Reason);
        Assert.Equal(mergedBytes, response.BytesFreed);
        Assert.False(Directory.Exists(merged.Worktree));
        Assert.True(BranchExists(merged.Branch)); // the branch stays: diff, show and reply still work
        Assert.Equal(
            [(unmerged.Id, "not merged"), (mergedThenDirty.Id, "has uncommitted changes in its worktree")],
            response.Kept.Select(k => (k.Id, k.Reason)).Order());
        Assert.True(Directory.Exists(unmerged.Worktree));
        Assert.True(File.Exists(Path.Combine(mergedThenDirty.Worktree, "edited-by-hand.txt")));
        Assert.Equal(head, _h.Git("rev-parse", "HEAD").Trim());

        var diff = await _h.OffloadAsync("diff", Id(merged));
        Assert.Contains("+merged line", diff.Stdout);
        var text = await _h.OffloadAsync("gc");
        Assert.Contains("freed 0 B (0 worktrees); kept 2", text.Stdout);
    }

    [Fact]
    public async Task Reply_AfterGcFreedTheWorktree_ChecksTheBranchOutAgainAndGoesOn()
    {
        var model = _h.Scenario("revive", new
        {
            name = "revive",
            turns = new[] { Tool("Write", new { file_path = "one.txt", content = "one\n" }), Final("Wrote one.") },
            rules = new[] { new { whenContains = "also two", afterTurn = 2, turn = Tool("Write", new { file_path = "two.txt", content = "two\n" }) } },
        });
        var task = await _h.RunTaskAsync(model, "write one");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);
        Assert.Equal(0, (await _h.OffloadAsync("merge", Id(task))).ExitCode);
        Assert.Equal(0, (await _h.OffloadAsync("gc")).ExitCode);
        Assert.False(Directory.Exists(task.Worktree));

        Assert.Equal(0, (await _h.OffloadAsync("reply", Id(task), "also two")).ExitCode);
        var done = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.True(File.Exists(Path.Combine(task.Worktree, "one.txt")));
        Assert.Equal("one.txt\ntwo.txt\n", _h.Git("ls-tree", "--name-only", task.Branch, "one.txt", "two.txt"));
    }

    [Fact]
    public async Task Gc_KeepsAMergedTaskThatGotNewCommitsAfterItsMerge()
    {
        var model = _h.Scenario("twice", new
        {
            name = "twice",
            turns = new[] { Tool("Write", new { file_path = "one.txt", content = "one\n" }), Final("Wrote one.") },
            rules = new[] { new { whenContains = "also two", afterTurn = 2, turn = Tool("Write", new { file_path = "two.txt", content = "two\n" }) } },
        });
        var task = await _h.RunTaskAsync(model, "write one");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);
        Assert.Equal(0, (await _h.OffloadAsync("merge", Id(task))).ExitCode);
        Assert.Equal(0, (await _h.OffloadAsync("reply", Id(task), "also two")).ExitCode);
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);

        var gc = JsonSerializer.Deserialize<GcResponse>((await _h.OffloadAsync("gc", "--json")).Stdout, OffloadJson.Options)!;

        Assert.Empty(gc.Removed);
        Assert.Equal((task.Id, "has commits after its merge"), gc.Kept.Select(k => (k.Id, k.Reason)).Single());
        Assert.True(File.Exists(Path.Combine(task.Worktree, "two.txt")));
    }

    private static long DiskUsage(string path) =>
        new DirectoryInfo(path).EnumerateFiles("*", SearchOption.AllDirectories).Where(f => f.LinkTarget is null).Sum(f => f.Length);

    private async Task WaitForEventAsync(long id, Func<AgentEvent, bool> match)
    {
        using var follower = _h.Start("logs", "-f", "--json", id.ToString(CultureInfo.InvariantCulture));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (await follower.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            if (match(JsonSerializer.Deserialize<AgentEvent>(line, OffloadJson.Options)!))
            {
                follower.Kill();
                return;
            }
        }

        throw new TimeoutException("the event never came");
    }
}
