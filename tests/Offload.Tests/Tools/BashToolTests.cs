using System.Diagnostics;
using Offload.Agent.Tools;

namespace Offload.Tests.Tools;

public sealed class BashToolTests : IDisposable
{
    private readonly ToolSandbox sandbox = new();
    private readonly BashTool bash = new();

    public void Dispose() => sandbox.Dispose();

    private Task<ToolResult> RunAsync(string command, ToolContext? context = null, long? timeoutMs = null, CancellationToken cancellationToken = default)
    {
        var input = new Dictionary<string, object?> { ["command"] = command };
        if (timeoutMs is { } ms)
        {
            input["timeout"] = ms;
        }
        return bash.InvokeAsync(ToolSandbox.Input(input), context ?? sandbox.Context, cancellationToken);
    }

    [Fact]
    public async Task Bash_RunsInTheWorktree_WithStdoutAndStderrCombined()
    {
        var result = await RunAsync("pwd; echo to-stdout; echo to-stderr >&2");

        Assert.Equal(new ToolResult($"{sandbox.WorkDir}\nto-stdout\nto-stderr", ExitCode: 0), result);
    }

    [Fact]
    public async Task Bash_NonZeroExitCode_IsAnErrorWithTheCode()
    {
        var result = await RunAsync("echo partial; exit 3");

        Assert.Equal(new ToolResult("partial\nExit code 3", IsError: true, ExitCode: 3), result);
    }

    [Fact]
    public async Task Bash_StdinIsEmpty_SoReadersDoNotHang()
    {
        var result = await RunAsync("cat; read -r line || echo eof");

        Assert.Equal(new ToolResult("eof", ExitCode: 0), result);
    }

    [Fact]
    public async Task Bash_GivenEnvironment_ReplacesTheInheritedOne()
    {
        var context = sandbox.Context with { Environment = new Dictionary<string, string> { ["ONLY_THIS"] = "yes" } };

        var result = await RunAsync("echo \"$ONLY_THIS:${HOME:-no-home}\"", context);

        Assert.Equal(new ToolResult("yes:no-home", ExitCode: 0), result);
    }

    [Fact]
    public async Task Bash_Timeout_KillsTheWholeProcessTree()
    {
        var watch = Stopwatch.StartNew();
        var result = await RunAsync("sleep 100 & echo $! > child.pid; echo started; sleep 100", timeoutMs: 500);

        Assert.Equal(new ToolResult("started\nCommand timed out after 500 ms; the process tree was killed.", IsError: true), result);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");
        AssertDies(ReadPid("child.pid"));
    }

    [Fact]
    public async Task Bash_Cancellation_KillsTreeIgnoringSigtermAndThrowsPromptly()
    {
        using var cancellation = new CancellationTokenSource();
        var run = RunAsync("trap '' TERM; sleep 100 & echo $! > child.pid; while :; do sleep 0.05; done", cancellationToken: cancellation.Token);
        WaitUntil(() => File.Exists(sandbox.Work("child.pid")) && new FileInfo(sandbox.Work("child.pid")).Length > 0, TimeSpan.FromSeconds(10));

        var watch = Stopwatch.StartNew();
        await cancellation.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);

        // 1 s of SIGTERM grace, then SIGKILL: well under the 100 s the command would take, with room for a loaded CI machine
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");
        AssertDies(ReadPid("child.pid"));
    }

    [Fact]
    public async Task Bash_BackgroundProcessHoldingTheOutput_IsKilledAfterTheShellExits()
    {
        var result = await RunAsync("sleep 100 & echo $! > child.pid; echo done");

        Assert.Equal(0, result.ExitCode);
        Assert.StartsWith("done\nBackground processes still held the output open", result.Output, StringComparison.Ordinal);
        AssertDies(ReadPid("child.pid"));
    }

    [Fact]
    public async Task Bash_LongOutput_IsCutToTheCapAndSpilledWhole()
    {
        var context = sandbox.Context with { MaxOutputChars = 1_000 };

        var result = await RunAsync("for i in $(seq 1 2000); do echo \"line $i\"; done; exit 1", context);

        Assert.True(result.Truncated);
        Assert.True(result.IsError);
        Assert.True(result.Output.Length <= 1_000, $"{result.Output.Length} characters");
        Assert.StartsWith("line 1\nline 2\n", result.Output, StringComparison.Ordinal);
        Assert.EndsWith("line 2000\nExit code 1", result.Output, StringComparison.Ordinal);
        Assert.Contains($"all of it is in {result.FullOutputPath}", result.Output, StringComparison.Ordinal);
        Assert.StartsWith(sandbox.SpillDir, result.FullOutputPath, StringComparison.Ordinal);
        Assert.Equal(string.Concat(Enumerable.Range(1, 2000).Select(i => $"line {i}\n")), File.ReadAllText(result.FullOutputPath!));
    }

    [Fact]
    public async Task Bash_ShortOutput_LeavesNoSpillFile()
    {
        var result = await RunAsync("echo short", sandbox.Context with { MaxOutputChars = 100 });

        Assert.Equal(new ToolResult("short", ExitCode: 0), result);
        Assert.False(Directory.Exists(sandbox.SpillDir) && Directory.EnumerateFiles(sandbox.SpillDir).Any());
    }

    [Theory]
    [InlineData(50)]
    [InlineData(200)]
    [InlineData(5_000)]
    public async Task Bash_ModelVisibleOutput_NeverExceedsTheCap(int cap)
    {
        var context = sandbox.Context with { MaxOutputChars = cap };

        var result = await RunAsync("head -c 20000 /dev/urandom | base64; echo 'é€😀'; exit 7", context);

        Assert.True(result.Output.Length <= cap, $"{result.Output.Length} > {cap}");
        Assert.Equal(7, result.ExitCode);
    }

    [Fact]
    public async Task Bash_BadInput_IsAnErrorResult()
    {
        Assert.Equal(ToolResult.Error("Missing required parameter `command`."), await bash.InvokeAsync(ToolSandbox.Input("{}"), sandbox.Context));
        Assert.Equal(ToolResult.Error("`timeout` must be a positive number of milliseconds."), await RunAsync("true", timeoutMs: 0));
    }

    private int ReadPid(string file) => int.Parse(File.ReadAllText(sandbox.Work(file)).Trim(), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Waits until the process is gone or a zombie (killed, waiting for init to reap it).</summary>
    private static void AssertDies(int pid) => WaitUntil(() => IsDead(pid), TimeSpan.FromSeconds(5), $"process {pid} is still alive");

    private static bool IsDead(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..][0];
            return state is 'Z' or 'X';
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return true;
        }
    }

    private static void WaitUntil(Func<bool> condition, TimeSpan limit, string? failure = null)
    {
        var watch = Stopwatch.StartNew();
        var spin = new SpinWait();
        while (!condition())
        {
            Assert.True(watch.Elapsed < limit, failure ?? $"condition not met within {limit}");
            spin.SpinOnce(sleep1Threshold: 20);
        }
    }
}
