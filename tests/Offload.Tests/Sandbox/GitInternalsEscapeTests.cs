using Offload.Protocol;
using Offload.Tests.EndToEnd;
using Offload.Tests.Resilience;
using static Offload.Tests.EndToEnd.Turns;

namespace Offload.Tests.Sandbox;

/// <summary>
/// A scripted agent, through the real daemon, rewrites the git files that Offload's own (unsandboxed) git commands
/// read — the worktree's <c>.git</c>, <c>commondir</c>, <c>gitdir</c>, HEAD, a nested repository's config — to make
/// them run its program or commit onto the user's branch. Each attempt runs twice: under real bubblewrap, which binds
/// those files read-only, and without a sandbox (Bash allowed outright), where the write lands and Offload itself must
/// refuse to follow it. Either way the user's branch, index and files stay as they were and no marker appears outside
/// the worktree (docs/sandbox.md, "The repository's git dir").
/// </summary>
public sealed class GitInternalsEscapeTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new("/var/tmp");
    private string _mainBefore = "";

    private string Marker => Path.Combine(_h.Root, "PWNED");

    public Task InitializeAsync()
    {
        _mainBefore = _h.Git("rev-parse", "main");
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private void WithoutSandbox()
    {
        _h.Env["OFFLOAD_BWRAP"] = Path.Combine(_h.Root, "no-bwrap-here");
        _h.WriteConfig(new { permissions = new { allow = new[] { "Bash" } } });
    }

    private async Task<(TaskInfo Done, List<AgentEvent> Events)> RunScriptAsync(string name, params object[] turns)
    {
        var task = await _h.RunTaskAsync(_h.Scenario(name, Scenario([.. turns, Final("done")])), name);
        var done = await _h.WaitAsync(task.Id);
        return (done, await _h.EventsAsync(task.Id));
    }

    /// <summary>The user's branch, index and files as they were; nothing written outside the worktree.</summary>
    private void AssertUserUntouched()
    {
        Assert.False(File.Exists(Marker), "a program the agent planted ran outside the sandbox: " + (File.Exists(Marker) ? File.ReadAllText(Marker) : ""));
        Assert.Equal(_mainBefore, _h.Git("rev-parse", "main"));
        Assert.Equal("ref: refs/heads/main", File.ReadAllText(Path.Combine(_h.Repo, ".git", "HEAD")).Trim());
        Assert.Equal("", _h.Git("status", "--porcelain", "--untracked-files=all"));
        Assert.Equal("# sample\n", File.ReadAllText(Path.Combine(_h.Repo, "README.md")));
        Assert.Equal("print('hello')\n", File.ReadAllText(Path.Combine(_h.Repo, "app.py")));
    }

    /// <summary>The run failed because the worktree's git files changed, said so in the journal, and said where the work is.</summary>
    private static void AssertReportedAsTampering(TaskInfo done, List<AgentEvent> events, string what)
    {
        Assert.Equal(OffloadTaskStatus.Failed, done.Status);
        Assert.Contains("the task's git files were changed from inside its worktree", done.Error, StringComparison.Ordinal);
        Assert.Contains(what, done.Error, StringComparison.Ordinal);
        Assert.Contains($"branch {done.Branch} is at", done.Error, StringComparison.Ordinal);
        Assert.Contains(events.OfType<ErrorRaised>(), e => e.Detail is { } detail && detail.Contains(what, StringComparison.Ordinal));
    }

    private static string Quoted(string text) => "'" + text.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>git without the sandbox's object quarantine, for repositories the agent makes of its own.</summary>
    private const string OwnGit = "env -u GIT_OBJECT_DIRECTORY -u GIT_ALTERNATE_OBJECT_DIRECTORIES git";

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Reproduction_APlantedRepositoryLinkedAsDotGit_NeverRunsItsFilter(bool sandboxed)
    {
        if (!sandboxed)
        {
            WithoutSandbox();
        }

        var filter = Quoted($"sh -c 'id > {Marker}; cat'");
        var (done, events) = await RunScriptAsync("planted-link",
            Tool("Bash", new { command = $"{OwnGit} init -q --bare .g && git --git-dir=.g config core.bare false && git --git-dir=.g config filter.p.clean {filter} && echo '* filter=p' > .gitattributes && rm .git && ln -s .g .git" }));

        AssertUserUntouched();
        if (sandboxed)
        {
            var result = events.OfType<ToolResulted>().Single();
            Assert.True(result.IsError, result.Output);
            Assert.Contains("rm: cannot remove '.git'", result.Output, StringComparison.Ordinal);
            Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
            Assert.Contains(".gitattributes", _h.Git("ls-tree", "-r", "--name-only", done.Branch)); // committed as data, the filter never run
        }
        else
        {
            AssertReportedAsTampering(done, events, "is now a symbolic link to .g");
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Reproduction_DotGitPointedAtTheUsersRepository_NeverCommitsOnTheUsersBranch(bool sandboxed)
    {
        if (!sandboxed)
        {
            WithoutSandbox();
        }

        var (done, events) = await RunScriptAsync("pointed-at-user",
            Tool("Bash", new { command = $"echo agent > AGENT.txt && echo gitdir: {_h.Repo}/.git > .git" }));

        AssertUserUntouched();
        Assert.Equal("", _h.Git("diff", "--cached", "--name-only"));
        if (sandboxed)
        {
            Assert.Contains(".git: Read-only file system", events.OfType<ToolResulted>().Single().Output, StringComparison.Ordinal);
            Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
            Assert.Contains("AGENT.txt", _h.Git("ls-tree", "-r", "--name-only", done.Branch)); // the work is on the task's own branch
        }
        else
        {
            AssertReportedAsTampering(done, events, "was rewritten to point elsewhere");
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task CommondirRewrittenToAPlantedRepository_IsRefusedAndReported(bool sandboxed)
    {
        if (!sandboxed)
        {
            WithoutSandbox();
        }

        var filter = Quoted($"sh -c 'id > {Marker}; cat'");
        var (done, events) = await RunScriptAsync("commondir",
            Tool("Bash", new
            {
                command = $"{OwnGit} init -q --bare planted.git && git --git-dir=planted.git config core.bare false && git --git-dir=planted.git config filter.p.clean {filter}"
                    + " && echo '* filter=p' > .gitattributes && echo \"$PWD/planted.git\" > \"$(git rev-parse --git-dir)/commondir\"",
            }));

        AssertUserUntouched();
        if (sandboxed)
        {
            Assert.Contains("commondir: Read-only file system", events.OfType<ToolResulted>().Single().Output, StringComparison.Ordinal);
            Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        }
        else
        {
            AssertReportedAsTampering(done, events, "commondir was changed");
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task GitdirFileRewritten_IsRefusedAndReported(bool sandboxed)
    {
        if (!sandboxed)
        {
            WithoutSandbox();
        }

        var (done, events) = await RunScriptAsync("gitdir",
            Tool("Bash", new { command = $"echo {_h.Repo}/.git > \"$(git rev-parse --git-dir)/gitdir\"" }));

        AssertUserUntouched();
        if (sandboxed)
        {
            Assert.Contains("gitdir: Read-only file system", events.OfType<ToolResulted>().Single().Output, StringComparison.Ordinal);
            Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        }
        else
        {
            AssertReportedAsTampering(done, events, "its gitdir file was changed or removed");
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task HeadRewrittenToTheUsersBranch_NeverMovesIt_AndIsReported(bool sandboxed)
    {
        if (!sandboxed)
        {
            WithoutSandbox();
        }

        // HEAD stays writable in the sandbox (git checkout and rebase write it): Offload checks it at each checkpoint.
        var (done, events) = await RunScriptAsync("head",
            Tool("Bash", new { command = "echo agent > AGENT.txt && echo 'ref: refs/heads/main' > \"$(git rev-parse --git-dir)/HEAD\" && echo rewrote" }));

        Assert.Equal("rewrote", events.OfType<ToolResulted>().Single().Output);
        AssertUserUntouched();
        AssertReportedAsTampering(done, events, "HEAD of the worktree no longer names the task's branch");
        Assert.Equal(done.BaseCommit, _h.Git("rev-parse", done.Branch).Trim());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task DotGitReplacedByAFreshRepositoryWithFsmonitorAndHooks_IsRefusedAndReported(bool sandboxed)
    {
        if (!sandboxed)
        {
            WithoutSandbox();
        }

        var program = Quoted($"sh -c 'id > {Marker}'");
        var hook = Quoted($"#!/bin/sh\nid > {Marker}\n");
        var (done, events) = await RunScriptAsync("fresh-init",
            Tool("Bash", new
            {
                command = $"rm .git && {OwnGit} init -q . && git config core.fsmonitor {program} && git config core.hooksPath .git/hooks"
                    + $" && for h in pre-commit post-commit post-index-change reference-transaction; do printf %s {hook} > .git/hooks/$h && chmod +x .git/hooks/$h; done",
            }));

        AssertUserUntouched();
        if (sandboxed)
        {
            Assert.Contains("rm: cannot remove '.git'", events.OfType<ToolResulted>().Single().Output, StringComparison.Ordinal);
            Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        }
        else
        {
            AssertReportedAsTampering(done, events, "it is now a folder");
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task DotGitPointedAtAPlantedRepositoryWithFsmonitor_IsRefusedAndReported(bool sandboxed)
    {
        if (!sandboxed)
        {
            WithoutSandbox();
        }

        var program = Quoted($"sh -c 'id > {Marker}'");
        var (done, events) = await RunScriptAsync("planted-fsmonitor",
            Tool("Bash", new
            {
                command = $"{OwnGit} init -q planted && git -C planted config core.fsmonitor {program} && git -C planted config core.worktree \"$PWD\""
                    + " && echo \"gitdir: $PWD/planted/.git\" > .git",
            }));

        AssertUserUntouched();
        if (sandboxed)
        {
            Assert.Contains(".git: Read-only file system", events.OfType<ToolResulted>().Single().Output, StringComparison.Ordinal);
            Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        }
        else
        {
            AssertReportedAsTampering(done, events, "was rewritten to point elsewhere");
        }
    }

    [Fact]
    public async Task ANestedRepositoryWithNoCommit_IsLeftOutOfTheCommit_AndTheCommitSaysSo()
    {
        // git cannot record a repository with no commit (its `add -A` fails on it): the rest of the work is committed.
        var (done, events) = await RunScriptAsync("nested-empty",
            Tool("Bash", new { command = $"{OwnGit} init -q scratch && echo draft > scratch/notes.txt && echo top > top.txt" }));

        Assert.All(events.OfType<ToolResulted>(), r => Assert.False(r.IsError, r.Output));
        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        var committed = _h.Git("ls-tree", "-r", "--name-only", done.Branch);
        Assert.Contains("top.txt", committed);
        Assert.DoesNotContain("scratch", committed);
        Assert.Contains("  scratch/", _h.Git("log", "-1", "--format=%B", done.Branch), StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(done.Worktree, "scratch", "notes.txt")), "the nested repository's files stay in the worktree");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AttributesNamingAFilterDefinedOnlyInANestedRepository_NeverRunIt(bool sandboxed)
    {
        if (!sandboxed)
        {
            WithoutSandbox();
        }

        // `git add -A` runs `git status` inside a nested repository it has a gitlink for, with that repository's config:
        // the filter would run there. The same file changed to the same size makes status hash it. The agent's own git
        // commands come before the filter is defined, so only Offload's could run it.
        var filter = Quoted($"sh -c 'id > {Marker}; cat'");
        var (done, events) = await RunScriptAsync("nested-filter",
            Tool("Bash", new
            {
                command = $"mkdir sub && cd sub && {OwnGit} init -q && echo '* filter=p' > .gitattributes && printf x > f && {OwnGit} add -A && {OwnGit} commit -qm nested"
                    + " && cd .. && echo '* filter=p' > .gitattributes && git add sub .gitattributes && git commit -qm 'a nested repository'"
                    + $" && git -C sub config filter.p.clean {filter} && git -C sub config core.fsmonitor {Quoted($"sh -c 'id > {Marker}'")} && printf y > sub/f && echo more > more.txt && echo planted",
            }),
            Tool("Write", new { file_path = "after.txt", content = "a turn that writes, after the nested repository\n" }));

        Assert.All(events.OfType<ToolResulted>(), r => Assert.False(r.IsError, r.Output));
        AssertUserUntouched();
        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.Equal(2, events.OfType<CheckpointSaved>().Count());
        Assert.StartsWith("160000 commit", _h.Git("ls-tree", done.Branch, "sub"), StringComparison.Ordinal); // kept as what it is: a gitlink
        Assert.Contains("after.txt", _h.Git("ls-tree", "-r", "--name-only", done.Branch));
    }

    [Fact]
    public async Task TamperingAfterACheckpoint_EndsTheRunAtTheNextOne_AndNamesTheLastGoodCheckpoint()
    {
        WithoutSandbox();

        var (done, events) = await RunScriptAsync("checkpoint-after",
            Tool("Write", new { file_path = "first.txt", content = "turn 1\n" }),
            Tool("Bash", new { command = $"echo turn2 > second.txt && echo gitdir: {_h.Repo}/.git > .git && echo tampered" }),
            Tool("Write", new { file_path = "third.txt", content = "never written\n" }));

        AssertUserUntouched();
        AssertReportedAsTampering(done, events, "was rewritten to point elsewhere");
        var saved = Assert.Single(events.OfType<CheckpointSaved>());
        Assert.Equal(1, saved.Turn);
        Assert.Contains($"its last checkpoint is turn 1 (refs/offload/{done.Id}/turn-1, {saved.Commit[..12]})", done.Error, StringComparison.Ordinal);
        Assert.Equal(2, events.OfType<ToolResulted>().Count()); // the run ended at turn 2's checkpoint
        Assert.False(File.Exists(Path.Combine(done.Worktree, "third.txt")));
        Assert.Equal(done.BaseCommit, _h.Git("rev-parse", done.Branch).Trim()); // nothing committed from a worktree git no longer agrees on
    }
}
