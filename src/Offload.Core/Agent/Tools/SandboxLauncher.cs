using System.Collections.Concurrent;
using System.Diagnostics;

namespace Offload.Agent.Tools;

/// <summary>
/// Starts sandboxed commands from one thread that lives as long as the process. bwrap's
/// <c>--die-with-parent</c> is <c>PR_SET_PDEATHSIG</c>, which the kernel fires when the
/// <em>thread</em> that forked bwrap exits, not the process; a thread-pool thread retires after
/// idling, and would take a long-running command down with it.
/// </summary>
internal static class SandboxLauncher
{
    private static readonly BlockingCollection<Action> Work = StartThread();

    /// <summary>Calls <see cref="Process.Start()"/> on the launcher thread; exceptions come back to the caller.</summary>
    public static Task StartAsync(Process process)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Work.Add(() =>
        {
            try
            {
                process.Start();
                started.SetResult();
            }
            catch (Exception e)
            {
                started.SetException(e);
            }
        });
        return started.Task;
    }

    private static BlockingCollection<Action> StartThread()
    {
        var work = new BlockingCollection<Action>();
        new Thread(() =>
        {
            foreach (var action in work.GetConsumingEnumerable())
            {
                action();
            }
        })
        { IsBackground = true, Name = "offload-sandbox-launcher" }.Start();
        return work;
    }
}
