using Offload.Protocol;
using static Offload.Tests.EndToEnd.Turns;

namespace Offload.Tests.EndToEnd;

/// <summary>
/// How a run's end is committed, seen through a <c>git</c> on PATH that writes down each command the daemon gives it
/// before running the real git: a run that only read, in a worktree it made itself, ends without asking git
/// anything; a run that wrote is committed; so is what a worktree an earlier run left holds.
/// </summary>
public sealed class FinishCommitTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new();
    private readonly string _log;

    public FinishCommitTests()
    {
        var realGit = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
            .Select(dir => Path.Combine(dir, "git")).First(File.Exists);
        _log = Path.Combine(_h.Root, "git.log");
        // Offload's own calls start with `-c core.hooksPath=/dev/null`; the subcommand follows.
        _h.InstallOnPath("git", $"#!/bin/sh\necho \"$(pwd) $*\" >> '{_log}'\nexec '{realGit}' \"$@\"\n");
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private List<string> GitCallsIn(string worktree) =>
        File.Exists(_log) ? [.. File.ReadAllLines(_log).Where(l => l.StartsWith(worktree + " ", StringComparison.Ordinal))] : [];

    [Fact]
    public async Task ARunThatOnlyRead_InTheWorktreeItMade_EndsWithoutAGitStatus_AndLeavesTheBranchAtItsBase()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("read", Scenario(
            Tool("Read", new { file_path = "README.md" }),
            Tool("Glob", new { pattern = "*.py" }),
            Final("README.md is one heading; app.py is the only Python file."))), "look around");
        var done = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.Null((await _h.EventsAsync(task.Id)).OfType<TaskFinished>().Single().Commit);
        Assert.Equal(_h.Git("rev-parse", "HEAD"), _h.Git("rev-parse", task.Branch));
        Assert.Equal("", _h.Git("-C", done.Worktree, "status", "--porcelain", "--untracked-files=all"));
        Assert.DoesNotContain(GitCallsIn(done.Worktree), l => l.Contains(" status ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ARunThatWrote_IsCommitted()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("write", Scenario(
            Tool("Write", new { file_path = "notes.txt", content = "noted\n" }),
            Final("Wrote notes.txt."))), "write a note");
        var done = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.NotNull((await _h.EventsAsync(task.Id)).OfType<TaskFinished>().Single().Commit);
        Assert.Equal("noted", _h.Git("show", task.Branch + ":notes.txt").TrimEnd());
        Assert.Contains(GitCallsIn(done.Worktree), l => l.Contains(" status ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AReplyInAWorktreeAnEarlierRunLeftChanged_CommitsWhatIsThere()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("first", Scenario(Final("Nothing to do."))), "wait");
        var first = await _h.WaitAsync(task.Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, first.Status);
        File.WriteAllText(Path.Combine(first.Worktree, "left.txt"), "left between runs\n"); // not written by a tool of the next run

        var reply = await _h.OffloadAsync("reply", task.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), "anything else?");
        Assert.True(reply.ExitCode == 0, reply.ToString());
        var done = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.Equal("left between runs", _h.Git("show", task.Branch + ":left.txt").TrimEnd());
    }
}
