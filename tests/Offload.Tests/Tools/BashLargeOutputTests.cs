using Offload.Agent.Tools;

namespace Offload.Tests.Tools;

/// <summary>Runs alone: it measures allocations process-wide, which parallel tests would inflate.</summary>
[CollectionDefinition(nameof(BashLargeOutputTests), DisableParallelization = true)]
[Collection(nameof(BashLargeOutputTests))]
public sealed class BashLargeOutputTests : IDisposable
{
    private readonly ToolSandbox sandbox = new();

    public void Dispose() => sandbox.Dispose();

    [Fact]
    public async Task Bash_HundredMegabytesOfOutput_StaysInBoundedMemoryAndCapsTheSpillFile()
    {
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);

        var result = await new BashTool().InvokeAsync(ToolSandbox.Input("""{"command":"head -c 100000000 /dev/zero | tr '\\0' 'a'"}"""), sandbox.Context);

        var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
        Assert.True(allocated < 48L * 1024 * 1024, $"allocated {allocated} bytes");
        Assert.True(result.Truncated);
        Assert.Equal(0, result.ExitCode);
        Assert.True(result.Output.Length <= sandbox.Context.MaxOutputChars);
        Assert.StartsWith("aaaa", result.Output, StringComparison.Ordinal);
        Assert.Contains("the command printed 100000000 bytes in all and the first 64 MB of it are in", result.Output, StringComparison.Ordinal);
        Assert.Equal(OutputCapture.SpillLimitBytes, new FileInfo(result.FullOutputPath!).Length);
    }
}
