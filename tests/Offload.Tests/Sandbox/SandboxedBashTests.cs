using System.Diagnostics;
using Offload.Agent.Tools;
using Bwrap = Offload.Agent.Tools.Sandbox;

namespace Offload.Tests.Sandbox;

/// <summary>The Bash tool under real bubblewrap, without a daemon: confinement, and the kill of everything inside.</summary>
public sealed class SandboxedBashTests : IAsyncLifetime
{
    private readonly string _root = Directory.CreateDirectory(Path.Combine("/var/tmp", "offload-sbx-" + Path.GetRandomFileName().Replace(".", "", StringComparison.Ordinal))).FullName;
    private readonly BashTool _bash = new();
    private ToolContext _context = null!;

    private string Work => Path.Combine(_root, "repo");

    public async Task InitializeAsync()
    {
        Assert.True(Bwrap.IsAvailable, Bwrap.Problem);
        Directory.CreateDirectory(Work);
        foreach (var args in new[] { new[] { "init", "-q", "-b", "main" }, ["-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "init"] })
        {
            using var git = Process.Start(new ProcessStartInfo("git", args) { WorkingDirectory = Work, UseShellExecute = false })!;
            await git.WaitForExitAsync();
        }

        var policy = await Bwrap.ForTaskAsync(Work, Work, "main", Path.Combine(_root, "spill"), new SandboxSettings());
        _context = new ToolContext(Work, Path.Combine(_root, "spill"), Environment: SandboxEnvironment.ForCommands(sandboxed: true), Sandbox: policy);
    }

    public Task DisposeAsync()
    {
        Directory.Delete(_root, recursive: true);
        return Task.CompletedTask;
    }

    private Task<ToolResult> RunAsync(string command, long? timeoutMs = null, CancellationToken cancellationToken = default)
    {
        var input = new Dictionary<string, object?> { ["command"] = command };
        if (timeoutMs is { } ms)
        {
            input["timeout"] = ms;
        }

        return _bash.InvokeAsync(Tools.ToolSandbox.Input(input), _context, cancellationToken);
    }

    [Fact]
    public async Task SandboxedBash_WritesInTheWorktree_ButNotBesideItOrInTheSystem()
    {
        var result = await RunAsync("pwd; echo in > inside.txt && echo wrote-inside; echo out > ../beside.txt; echo etc > /etc/offload-sandbox-probe; exit 0");

        Assert.StartsWith($"{Work}\nwrote-inside\n", result.Output, StringComparison.Ordinal);
        Assert.Contains($"../beside.txt: Read-only file system", result.Output, StringComparison.Ordinal);
        Assert.Contains("/etc/offload-sandbox-probe: Read-only file system", result.Output, StringComparison.Ordinal);
        Assert.Equal("in\n", File.ReadAllText(Path.Combine(Work, "inside.txt")));
        Assert.False(File.Exists(Path.Combine(_root, "beside.txt")));
        Assert.False(File.Exists("/etc/offload-sandbox-probe"));
    }

    [Fact]
    public async Task SandboxedBash_Tmp_IsPrivateAndWritable()
    {
        var hostFile = Path.Combine("/tmp", "offload-sbx-host-" + Path.GetRandomFileName());
        var sandboxFile = Path.Combine("/tmp", "offload-sbx-inner-" + Path.GetRandomFileName());
        File.WriteAllText(hostFile, "host");
        try
        {
            var result = await RunAsync($"test -e {hostFile} && echo host-visible; echo x > {sandboxFile} && cat {sandboxFile}; echo \"tmpdir=$TMPDIR\"");

            Assert.Equal(new ToolResult("x\ntmpdir=/tmp", ExitCode: 0), result);
            Assert.False(File.Exists(sandboxFile));
        }
        finally
        {
            File.Delete(hostFile);
        }
    }

    [Fact]
    public async Task SandboxedBash_Timeout_KillsEveryProcessInTheSandbox()
    {
        var token = UniqueSleep();
        var watch = Stopwatch.StartNew();

        var result = await RunAsync($"sleep {token} & (setsid sleep {token} &); echo started; sleep {token}", timeoutMs: 700);

        Assert.Equal(new ToolResult("started\nCommand timed out after 700 ms; the process tree was killed.", IsError: true), result);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");
        await AssertNoneLeftAsync(token);
    }

    [Fact]
    public async Task SandboxedBash_Cancellation_KillsProcessesIgnoringSigtermAndThrowsPromptly()
    {
        var token = UniqueSleep();
        using var cancellation = new CancellationTokenSource();
        var run = RunAsync($"trap '' TERM; sleep {token} & echo $! > child.pid; while :; do sleep 0.05; done", cancellationToken: cancellation.Token);
        await WaitUntilAsync(() => File.Exists(Path.Combine(Work, "child.pid")) && new FileInfo(Path.Combine(Work, "child.pid")).Length > 0, TimeSpan.FromSeconds(10));

        var watch = Stopwatch.StartNew();
        await cancellation.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);

        // 1 s of SIGTERM grace, then SIGKILL: well under the 100 s the command would take, with room for a loaded CI machine
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");
        await AssertNoneLeftAsync(token);
    }

    [Fact]
    public async Task SandboxedBash_StartedFromAThreadThatThenExits_KeepsRunning()
    {
        // --die-with-parent is PR_SET_PDEATHSIG, which fires when the *thread* that forked bwrap exits, and
        // thread-pool threads retire when idle; the command must outlive the thread that happened to start it.
        var run = Task.Factory.StartNew(() => RunAsync("sleep 1; echo survived"), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();

        Assert.Equal(new ToolResult("survived", ExitCode: 0), await run);
    }

    [Fact]
    public async Task SandboxedBash_ExitCode_PassesThroughBwrap()
    {
        Assert.Equal(new ToolResult("partial\nExit code 3", IsError: true, ExitCode: 3), await RunAsync("echo partial; exit 3"));
    }

    [Fact]
    public async Task SandboxedBash_GitCommitInTheWorktree_Works()
    {
        var result = await RunAsync("echo x > f.txt && git add f.txt && git -c user.name=A -c user.email=a@example.com commit -q -m 'from the sandbox' && git log --format=%s -1");

        Assert.Equal(new ToolResult("from the sandbox", ExitCode: 0), result);
    }

    [Fact]
    public async Task SandboxedBash_ObjectsGitWrites_ReachTheRepositoryChecked_ForgedOnesDoNot()
    {
        var forged = "ab" + new string('c', 38);

        var result = await RunAsync(
            "echo one > one.txt && git add one.txt && git -c user.name=A -c user.email=a@example.com commit -q -m one && "
            + "echo two > two.txt && git add two.txt && git -c user.name=A -c user.email=a@example.com commit -q -m two && "
            + "git repack -q -d -l && echo three > three.txt && git add three.txt && git -c user.name=A -c user.email=a@example.com commit -q -m three && "
            + $"mkdir -p \"$GIT_OBJECT_DIRECTORY/ab\" && echo junk > \"$GIT_OBJECT_DIRECTORY/ab/{forged[2..]}\" && git log --format=%s | head -3");

        Assert.Equal(new ToolResult("three\ntwo\none", ExitCode: 0), result);
        Assert.Equal("three\ntwo\none\ninit\n", await GitAsync("log", "--format=%s")); // outside the sandbox, without the quarantine
        Assert.Equal("", await GitAsync("fsck", "--no-progress", "--no-dangling"));
        Assert.False(File.Exists(Path.Combine(Work, ".git", "objects", "ab", forged[2..])));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(Work, ".git", "offload-objects")));
    }

    private async Task<string> GitAsync(params string[] args)
    {
        var info = new ProcessStartInfo("git") { WorkingDirectory = Work, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var git = Process.Start(info)!;
        var output = await git.StandardOutput.ReadToEndAsync();
        var error = await git.StandardError.ReadToEndAsync();
        await git.WaitForExitAsync();
        Assert.True(git.ExitCode == 0, $"git {string.Join(' ', args)}: {error}");
        return output;
    }

    /// <summary>A sleep duration no other process on the machine uses, to find the sandbox's processes from outside its pid namespace.</summary>
    private static string UniqueSleep() => "9" + Random.Shared.Next(100_000, 999_999) + ".5";

    private static async Task AssertNoneLeftAsync(string token)
    {
        try
        {
            await WaitUntilAsync(() => LiveProcessesWith(token) == 0, TimeSpan.FromSeconds(5));
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"{LiveProcessesWith(token)} processes running `sleep {token}` survived");
        }
    }

    private static int LiveProcessesWith(string token)
    {
        var count = 0;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            try
            {
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                if (cmdline.StartsWith("sleep " + token, StringComparison.Ordinal) && stat[(stat.LastIndexOf(')') + 2)..][0] is not ('Z' or 'X'))
                {
                    count++;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }

        return count;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(20));
        while (!condition())
        {
            await timer.WaitForNextTickAsync(cts.Token);
        }
    }
}
