using System.Globalization;

namespace Offload.Agent.Tools;

/// <summary>
/// What one command may use of the machine (<see cref="SandboxLimits"/>), so that a fork bomb, a memory hog or a
/// <c>dd</c> that fills the disk fails alone while the daemon and other tasks go on:
/// <list type="bullet">
/// <item>processes and memory: a cgroup of the command's own (<see cref="Cgroups"/>, v2 or v1, found at start) that the
/// command joins before bwrap starts; where none can be made, <c>ulimit -u</c> (processes of the uid, which root is exempt
/// from) and <c>ulimit -d</c> (each process's heap; not <c>-v</c>, which breaks JITs that reserve address space);</item>
/// <item>disk: <c>ulimit -f</c> stops any one file at the limit at once, and the worktree is measured while the command
/// runs; grown past the limit, the command is killed;</item>
/// <item>the private <c>/tmp</c>, which is memory: bwrap's <c>--size</c> (<see cref="Sandbox.Arguments"/>).</item>
/// </list>
/// A limit that was reached kills the command, and its tool result says which (<see cref="Reason"/>).
/// </summary>
public sealed class CommandLimits : IAsyncDisposable
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(200);

    private readonly SandboxLimits _limits;
    private readonly string[] _measured;
    private readonly long _before;
    private readonly Cgroup? _cgroup;
    private readonly CancellationTokenSource _breached = new();
    private readonly CancellationTokenSource _stop = new();
    private Task? _watch;
    private string? _reason;
    private Task _cancelling = Task.CompletedTask;

    private CommandLimits(SandboxLimits limits, string[] measured, long before, Cgroup? cgroup)
    {
        _limits = limits;
        _measured = measured;
        _before = before;
        _cgroup = cgroup;
    }

    /// <summary>Fires when a limit was reached: the command is to be killed.</summary>
    public CancellationToken Breached => _breached.Token;

    /// <summary>Which limit was reached, for the tool result; null while none was.</summary>
    public string? Reason => _reason;

    /// <summary>Whether the command runs in a cgroup of its own (else only rlimits hold it).</summary>
    public bool InCgroup => _cgroup is not null;

    /// <summary>
    /// Limits for a command writing in <paramref name="writable"/> (the worktree first); <paramref name="sizeBefore"/> is what
    /// they held when the last command ended, if known (the disk limit counts what a command adds past it).
    /// </summary>
    public static CommandLimits Create(SandboxLimits limits, IReadOnlyList<string> writable, long? sizeBefore)
    {
        var measured = writable.Where(Directory.Exists).ToArray();
        var before = limits.MaxDiskMb > 0 ? sizeBefore ?? WorktreeScan.Size(measured) : 0;
        return new CommandLimits(limits, measured, before, Cgroups.Create(limits));
    }

    /// <summary>
    /// The program and arguments that come first: a shell that moves itself into the command's cgroup and then
    /// <c>exec</c>s the rest (so bwrap and everything it starts are in it from their first instruction). Empty without a cgroup.
    /// </summary>
    public IReadOnlyList<string> Launcher => _cgroup is null
        ? []
        : ["/bin/sh", "-c", JoinAndExec, "offload-limits", .. _cgroup.ProcsFiles, "--"];

    /// <summary>
    /// A shell script whose arguments are <c>cgroup.procs</c> files, then <c>--</c>, then a command: it writes its pid to each
    /// file (joining the cgroup) and <c>exec</c>s the command, so the command is in the cgroup from its first instruction.
    /// </summary>
    internal const string JoinAndExec =
        "for f; do [ \"$f\" = -- ] && break; echo $$ > \"$f\" || { echo \"offload: cannot join the cgroup ($f)\" >&2; exit 125; }; shift; done; shift; exec \"$@\"";

    /// <summary>The shell lines that set the rlimits, to run in the command's shell before the command (they are inherited).</summary>
    public string Ulimits
    {
        get
        {
            var lines = new List<string>();
            if (_limits.MaxDiskMb > 0)
            {
                lines.Add(string.Create(CultureInfo.InvariantCulture, $"ulimit -f {_limits.MaxDiskMb * 1024L} 2>/dev/null")); // 1024-byte blocks
            }

            if (_cgroup is null && _limits.MaxProcesses > 0)
            {
                lines.Add(string.Create(CultureInfo.InvariantCulture, $"ulimit -u {_limits.MaxProcesses} 2>/dev/null"));
            }

            if (_cgroup is null && _limits.MaxMemoryMb > 0)
            {
                lines.Add(string.Create(CultureInfo.InvariantCulture, $"ulimit -d {_limits.MaxMemoryMb * 1024L} 2>/dev/null")); // KiB
            }

            return lines.Count == 0 ? "" : string.Join("; ", lines) + "\n";
        }
    }

    /// <summary>Starts watching the cgroup's counters and the worktree's size while the command runs.</summary>
    public void Watch() => _watch = WatchAsync(_stop.Token);

    /// <summary>
    /// After the command: stops watching, checks once more (a limit reached in the last moments), clears setuid and setgid
    /// bits in the worktree. Returns what the worktree holds now and the files whose bits were cleared.
    /// </summary>
    public async Task<(long Size, IReadOnlyList<string> ClearedSetId)> FinishAsync()
    {
        await _stop.CancelAsync();
        if (_watch is { } watch)
        {
            await watch.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        CheckCgroup();
        var (worktreeSize, cleared) = WorktreeScan.ClearSetIdAndMeasure(_measured.FirstOrDefault());
        var size = worktreeSize + WorktreeScan.Size(_measured.Skip(1));
        CheckDisk(size);
        return (size, cleared);
    }

    private async Task WatchAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(Tick);
        var nextDisk = TimeSpan.FromSeconds(1);
        var sinceDisk = TimeSpan.Zero;
        try
        {
            while (_reason is null && await timer.WaitForNextTickAsync(cancellationToken))
            {
                CheckCgroup();
                sinceDisk += Tick;
                if (_reason is null && _limits.MaxDiskMb > 0 && sinceDisk >= nextDisk)
                {
                    var started = TimeProvider.System.GetTimestamp();
                    CheckDisk(WorktreeScan.Size(_measured));
                    // A big worktree is measured less often: at most about 5 % of the time goes to measuring it.
                    var took = TimeProvider.System.GetElapsedTime(started);
                    nextDisk = TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(1).Ticks, took.Ticks * 20));
                    sinceDisk = TimeSpan.Zero;
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private void CheckCgroup()
    {
        if (_cgroup is null || _reason is not null)
        {
            return;
        }

        if (_cgroup.ProcessLimitReached())
        {
            Breach(string.Create(CultureInfo.InvariantCulture,
                $"killed: the task's process limit ({_limits.MaxProcesses}) was reached. Raise sandbox.limits.maxProcesses in your Offload config if the command needs more (docs/sandbox.md)."));
        }
        else if (_cgroup.MemoryLimitReached())
        {
            Breach(string.Create(CultureInfo.InvariantCulture,
                $"killed: the task's memory limit ({_limits.MaxMemoryMb} MB) was reached. Raise sandbox.limits.maxMemoryMb in your Offload config if the command needs more (docs/sandbox.md)."));
        }
    }

    private void CheckDisk(long size)
    {
        var limit = _limits.MaxDiskMb * 1024L * 1024;
        if (_reason is null && _limits.MaxDiskMb > 0 && size > limit && size > _before)
        {
            Breach(string.Create(CultureInfo.InvariantCulture,
                $"killed: the task's disk limit ({_limits.MaxDiskMb} MB) was reached: the worktree holds {size / (1024 * 1024)} MB. Delete what is not needed, or raise sandbox.limits.maxDiskMb in your Offload config (docs/sandbox.md)."));
        }
    }

    private void Breach(string reason)
    {
        _reason = reason;
        _cancelling = _breached.CancelAsync(); // the kill runs elsewhere, not inside the watch it would wait for
    }

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

        await _cancelling;
        _stop.Dispose();
        _breached.Dispose();
    }
}
