using Offload.Workspace;

namespace Offload.Tests.Workspace;

public class GitTests
{
    [Fact]
    public async Task Run_CapturesOutputAndExitCode_InTheCLocaleWithoutPrompts()
    {
        using var repo = await TempRepo.CreateAsync();

        var ok = await Git.RunAsync(repo.Root, ["rev-parse", "--is-inside-work-tree"]);
        var failed = await Git.RunAsync(repo.Root, ["rev-parse", "--verify", "no-such-ref"]);

        Assert.Equal(new GitResult(0, "true\n", ""), ok);
        Assert.Equal(128, failed.ExitCode);
        Assert.Contains("fatal: Needed a single revision", failed.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_PassesEnvironmentAndStandardInputToTheChildOnly()
    {
        using var repo = await TempRepo.CreateAsync();

        var result = await Git.RunAsync(
            repo.Root,
            ["hash-object", "--stdin"],
            new Dictionary<string, string> { ["GIT_AUTHOR_NAME"] = "Child Only" },
            standardInput: "hello\n");

        Assert.Equal("ce013625030ba8dba906f756967f9e9ca394464a", result.Stdout.Trim());
        Assert.Null(Environment.GetEnvironmentVariable("GIT_TERMINAL_PROMPT"));
    }

    [Fact]
    public async Task Run_Cancelled_KillsGitAndItsChildrenAndThrows()
    {
        using var repo = await TempRepo.CreateAsync();
        using var cancellation = new CancellationTokenSource();
        var started = System.Diagnostics.Stopwatch.StartNew();

        // The alias runs a shell that would wait ten minutes; cancelling must end the whole tree now.
        var running = Git.RunAsync(repo.Root, ["-c", "alias.wait=!sleep 600", "wait"], cancellationToken: cancellation.Token);
        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
        Assert.True(started.Elapsed < TimeSpan.FromMinutes(1));
    }

    [Fact]
    public async Task Output_NonZeroExit_BecomesGitFailedWithGitsMessage()
    {
        using var repo = await TempRepo.CreateAsync();

        var error = await Assert.ThrowsAsync<WorkspaceException>(() => Git.OutputAsync(repo.Root, ["rev-parse", "--verify", "nope"]));

        Assert.Equal("git_failed", error.Code);
        Assert.Contains("Needed a single revision", error.Message, StringComparison.Ordinal);
    }
}
