using System.Globalization;
using Offload.Agent.Tools;

namespace Offload.Engines.Claude;

/// <summary>
/// The task's <c>sandbox.limits</c> held over a whole Claude Code run, as <see cref="CommandLimits"/> holds them over one
/// command of the builtin engine. Claude Code runs its commands itself, so the limits cover its process tree: one cgroup
/// (<see cref="Cgroups"/>) that the run joins before bwrap starts, with room on top for Claude Code's own processes
/// (<see cref="ProcessRoom"/> threads, <see cref="MemoryRoomMb"/> MB); where no cgroup can be made, rlimits in the
/// launching shell. The kernel holds the line (a fork fails at <c>pids.max</c>, the memory hog is the one the OOM killer
/// picks, <c>ulimit -f</c> stops a file at the disk limit); the worktree's size is watched, and without a cgroup the number
/// of the commands' processes. Each time a limit is reached,
/// the commands Claude Code is running (its descendants, never Claude Code or the bridge) are killed, so a fork bomb
/// left in the background cannot starve the rest of the run, and <see cref="Reached"/> puts it on record.
/// </summary>
public sealed class ClaudeLimits : IAsyncDisposable
{
    /// <summary>Threads of Claude Code (its runtime's) and of the bridge, counted by <c>pids.max</c> with the commands'.</summary>
    public const int ProcessRoom = 128;

    /// <summary>Claude Code's own memory (about 300 MB while it works) and the bridge's.</summary>
    public const int MemoryRoomMb = 768;

    /// <summary>Without a cgroup, the commands are killed this close to the uid's process limit (Claude Code needs a few threads to go on).</summary>
    private const int Margin = 16;

    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan DiskEvery = TimeSpan.FromSeconds(1);

    /// <summary>bash, whose <c>ulimit -u</c> sets the process limit (dash has no <c>-u</c>, and would silently set none).</summary>
    private static readonly string Shell = new[] { "/bin/bash", "/usr/bin/bash" }.FirstOrDefault(File.Exists) ?? "/bin/sh";

    private readonly SandboxLimits _limits;
    private readonly string _worktree;
    private readonly Cgroup? _cgroup;
    private readonly CancellationTokenSource _stop = new();
    private Task? _watch;
    private long _processBreaches;
    private long _memoryBreaches;

    private readonly string _agent;

    private ClaudeLimits(SandboxLimits limits, string worktree, Cgroup? cgroup, string agent)
    {
        _agent = agent;
        _limits = limits;
        _worktree = worktree;
        _cgroup = cgroup;
    }

    /// <summary>Limits for a run in <paramref name="worktree"/>; none when every limit is off.</summary>
    /// <param name="agent">The agent's name in what the journal says (the codex engine holds its runs the same way).</param>
    public static ClaudeLimits? Create(SandboxLimits limits, string worktree, string agent = "Claude Code")
    {
        if (limits is { MaxProcesses: <= 0, MaxMemoryMb: <= 0, MaxDiskMb: <= 0 })
        {
            return null;
        }

        var forTree = limits with
        {
            MaxProcesses = limits.MaxProcesses > 0 ? limits.MaxProcesses + ProcessRoom : 0,
            MaxMemoryMb = limits.MaxMemoryMb > 0 ? limits.MaxMemoryMb + MemoryRoomMb : 0,
        };
        return new ClaudeLimits(limits, worktree, Cgroups.Create(forTree), agent);
    }

    /// <summary>
    /// What comes before the run's command line: a shell that sets the rlimits, joins the cgroup (when there is one) and
    /// <c>exec</c>s the rest, so everything the run starts is held from its first instruction.
    /// </summary>
    public IReadOnlyList<string> Launcher
    {
        get
        {
            var ulimits = new List<string>();
            if (_limits.MaxDiskMb > 0)
            {
                ulimits.Add(string.Create(CultureInfo.InvariantCulture, $"ulimit -f {_limits.MaxDiskMb * 1024L} 2>/dev/null"));
            }

            if (_cgroup is null && _limits.MaxProcesses > 0)
            {
                ulimits.Add(string.Create(CultureInfo.InvariantCulture, $"ulimit -u {_limits.MaxProcesses + ProcessRoom} 2>/dev/null"));
            }

            return [Shell, "-c", string.Concat(ulimits.Select(u => u + "; ")) + CommandLimits.JoinAndExec, "offload-limits", .. _cgroup?.ProcsFiles ?? [], "--"];
        }
    }

    /// <summary>Whether the run is in a cgroup of its own (else only rlimits hold it).</summary>
    public bool InCgroup => _cgroup is not null;

    /// <summary>
    /// Watches while the run goes on. <paramref name="killCommands"/> ends the commands Claude Code is running;
    /// <paramref name="reached"/> is told which limit was reached (for the journal).
    /// </summary>
    /// <param name="countCommands">How many processes Claude Code's commands have now: without a cgroup, nothing else tells that
    /// the process limit (an rlimit of the whole uid then) was reached.</param>
    public void Watch(Action killCommands, Func<int> countCommands, Func<string, Task> reached) =>
        _watch = WatchAsync(killCommands, countCommands, reached, _stop.Token);

    private async Task WatchAsync(Action killCommands, Func<int> countCommands, Func<string, Task> reached, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(Tick);
        var sinceDisk = TimeSpan.Zero;
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                sinceDisk += Tick;
                string? reason = null;
                if (_cgroup is not null && _cgroup.ProcessLimitHits() is var processes && processes > _processBreaches
                    || _cgroup is null && _limits.MaxProcesses > 0 && countCommands() > 0 && UidTasks() >= _limits.MaxProcesses + ProcessRoom - Margin)
                {
                    _processBreaches = _cgroup?.ProcessLimitHits() ?? 0;
                    reason = string.Create(CultureInfo.InvariantCulture,
                        $"the task's process limit ({_limits.MaxProcesses}) was reached: the commands {_agent} was running were killed. Raise sandbox.limits.maxProcesses in your Offload config if they need more (docs/sandbox.md).");
                }
                else if (_cgroup is not null && _cgroup.MemoryLimitHits() is var memory && memory > _memoryBreaches)
                {
                    _memoryBreaches = memory;
                    reason = string.Create(CultureInfo.InvariantCulture,
                        $"the task's memory limit ({_limits.MaxMemoryMb} MB) was reached: the commands {_agent} was running were killed. Raise sandbox.limits.maxMemoryMb in your Offload config if they need more (docs/sandbox.md).");
                }
                else if (_limits.MaxDiskMb > 0 && sinceDisk >= DiskEvery)
                {
                    sinceDisk = TimeSpan.Zero;
                    var size = WorktreeScan.Size([_worktree]);
                    if (size > _limits.MaxDiskMb * 1024L * 1024)
                    {
                        reason = string.Create(CultureInfo.InvariantCulture,
                            $"the task's disk limit ({_limits.MaxDiskMb} MB) was reached: the worktree holds {size / (1024 * 1024)} MB; the commands {_agent} was running were killed. Raise sandbox.limits.maxDiskMb in your Offload config if the task needs more (docs/sandbox.md).");
                    }
                }

                if (reason is not null)
                {
                    killCommands();
                    await reached(reason);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// The tasks (processes and threads) of the daemon's user now: what <c>ulimit -u</c> counts, for every process of the
    /// user at once. Where there is no cgroup, that count near the limit says the commands can no longer fork.
    /// </summary>
    private static int UidTasks()
    {
        var uid = RealUid(File.ReadLines("/proc/self/status"));
        var tasks = 0;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!char.IsAsciiDigit(Path.GetFileName(dir)[0]))
            {
                continue;
            }

            try
            {
                var status = File.ReadAllLines(Path.Combine(dir, "status"));
                if (RealUid(status) == uid)
                {
                    tasks += status.Where(l => l.StartsWith("Threads:", StringComparison.Ordinal))
                        .Select(l => int.Parse(l["Threads:".Length..].Trim(), CultureInfo.InvariantCulture)).FirstOrDefault(1);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
                // gone meanwhile
            }
        }

        return tasks;
    }

    private static string? RealUid(IEnumerable<string> status) =>
        status.FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal))?.Split('\t', StringSplitOptions.RemoveEmptyEntries).ElementAtOrDefault(1);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_watch is { } watch)
        {
            await watch.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (_cgroup is not null)
        {
            await _cgroup.RemoveAsync();
        }

        _stop.Dispose();
    }
}
