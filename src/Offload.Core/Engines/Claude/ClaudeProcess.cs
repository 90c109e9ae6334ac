using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading.Channels;

namespace Offload.Engines.Claude;

/// <summary>
/// One <c>claude -p</c> process in its own session and process group (through <c>setsid</c>, as
/// BashTool does), so stopping it stops every command it started. The prompt goes in on stdin
/// (no argument length limit), stdout is read line by line, the end of stderr is kept for errors.
/// Stopping is an interrupt (SIGINT) to the group, then SIGKILL after a grace period. In the sandbox
/// the process is bubblewrap, Claude Code runs below it in a session of its own, and the interrupt
/// goes to the first program inside (<see cref="ClaudeForwarder"/>, which passes it on).
/// </summary>
public sealed class ClaudeProcess : IAsyncDisposable
{
    public static readonly TimeSpan InterruptGrace = TimeSpan.FromSeconds(2);
    private const int SigInt = 2;
    private const int SigKill = 9;
    private const int StderrKeep = 8 * 1024;

    private static readonly string? SetsidPath = new[] { "/usr/bin/setsid", "/bin/setsid" }.FirstOrDefault(File.Exists);

    private readonly Process _process;
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private readonly StringBuilder _stderr = new();
    private readonly Task _pumps;

    private readonly bool _sandboxed;

    private ClaudeProcess(Process process, bool sandboxed)
    {
        _process = process;
        _sandboxed = sandboxed;
        Pid = process.Id;
        StartTicks = ProcessStartTicks(Pid);
        _pumps = Task.WhenAll(PumpStdoutAsync(), PumpStderrAsync());
    }

    /// <summary>The process id, which is also its process group id (setsid).</summary>
    public int Pid { get; }

    /// <summary>The start time of the process in clock ticks since boot (field 22 of /proc/PID/stat), to know it again after a restart.</summary>
    public long? StartTicks { get; }

    /// <param name="sandbox">The command line that runs Claude Code in bubblewrap (<see cref="ClaudeSandbox.Command"/>), or null.</param>
    /// <param name="launcher">What runs first and <c>exec</c>s the rest (<see cref="ClaudeLimits.Launcher"/>), or empty.</param>
    public static async Task<ClaudeProcess> StartAsync(
        string executable, IReadOnlyList<string> args, string workDir, IReadOnlyDictionary<string, string> environment, string stdin,
        IReadOnlyList<string>? sandbox, IReadOnlyList<string>? launcher = null)
    {
        if (SetsidPath is null)
        {
            throw new ClaudeEngineException("setsid (util-linux) was not found; Claude Code cannot be run in its own process group");
        }

        launcher ??= [];
        var info = new ProcessStartInfo(launcher.Count > 0 ? launcher[0] : SetsidPath)
        {
            WorkingDirectory = workDir,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        if (launcher.Count > 0)
        {
            foreach (var arg in launcher.Skip(1))
            {
                info.ArgumentList.Add(arg);
            }

            info.ArgumentList.Add(SetsidPath); // exec'd by the launcher: the same pid, not a group leader, so setsid does not fork
        }

        foreach (var arg in sandbox ?? [])
        {
            info.ArgumentList.Add(arg);
        }

        info.ArgumentList.Add(executable);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment.Clear();
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }

        var process = new Process { StartInfo = info };
        try
        {
            if (sandbox is null)
            {
                process.Start();
            }
            else
            {
                await Agent.Tools.SandboxLauncher.StartAsync(process); // so that --die-with-parent follows the daemon, not a pool thread
            }
        }
        catch (Win32Exception e)
        {
            throw new ClaudeEngineException($"could not start {executable}: {e.Message}");
        }

        var started = new ClaudeProcess(process, sandbox is not null);
        try
        {
            process.StandardInput.Write(stdin);
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // it exited before reading its prompt; its stderr says why
        }

        return started;
    }

    /// <summary>The stdout lines, in order, until the process closes its output.</summary>
    public IAsyncEnumerable<string> ReadLinesAsync(CancellationToken cancellationToken) => _lines.Reader.ReadAllAsync(cancellationToken);

    /// <summary>Waits for the exit, after the output was read to its end. Returns the exit code.</summary>
    public async Task<int> WaitAsync()
    {
        await _process.WaitForExitAsync().ConfigureAwait(false);
        await _pumps.ConfigureAwait(false);
        return _process.ExitCode;
    }

    public string StderrTail
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString().Trim();
            }
        }
    }

    /// <summary>
    /// SIGINT to the group (Claude Code then ends the commands it started and exits), up to
    /// <see cref="InterruptGrace"/> for that, then SIGKILL to the group and to every descendant
    /// seen before the interrupt: Claude Code runs each command in a session of its own, so the
    /// group alone does not hold them.
    /// </summary>
    public async Task StopAsync()
    {
        var tree = Descendants(Pid);
        if (_sandboxed)
        {
            // bubblewrap would die of the interrupt and take Claude Code down before it could end its commands itself
            if (tree.FirstOrDefault(p => Command(p.Pid) is not (null or "bwrap")) is { Pid: > 0 } inside)
            {
                _ = kill(inside.Pid, SigInt);
            }
        }
        else
        {
            Signal(SigInt);
        }

        try
        {
            await _process.WaitForExitAsync().WaitAsync(InterruptGrace).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }

        Signal(SigKill);
        KillAll(tree);
        await _process.WaitForExitAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Stops a Claude Code process an earlier daemon started, if that very process still lives (same
    /// pid and start time: a reused pid is left alone), the same way as <see cref="StopAsync"/>. For after
    /// a daemon crash, when it is an orphan still working in the worktree.
    /// </summary>
    public static async Task<bool> StopLeftoverAsync(int pid, long startTicks)
    {
        if (ProcessStartTicks(pid) != startTicks)
        {
            return false;
        }

        var tree = Descendants(pid);
        _ = kill(-pid, SigInt);
        var deadline = DateTimeOffset.UtcNow + InterruptGrace;
        while (ProcessStartTicks(pid) == startTicks && DateTimeOffset.UtcNow < deadline)
        {
            await Task.Delay(50).ConfigureAwait(false); // not our child: there is nothing to wait on but /proc
        }

        _ = kill(-pid, SigKill);
        if (ProcessStartTicks(pid) == startTicks)
        {
            _ = kill(pid, SigKill);
        }

        KillAll(tree);
        return true;
    }

    /// <summary>
    /// Kills the commands Claude Code is running (every process below Claude Code: below the bridge in the sandbox),
    /// never Claude Code itself; again while new ones appear (a fork bomb forks into the places the killed ones free), for up to 2 s.
    /// </summary>
    public void KillCommands()
    {
        var deadline = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(2);
        while (DateTimeOffset.UtcNow < deadline && Commands() is { Count: > 0 } commands)
        {
            KillAll(commands);
        }
    }

    /// <summary>How many processes the commands Claude Code is running have now.</summary>
    public int CountCommands() => Commands().Count;

    /// <summary>The processes below Claude Code (below the bridge in the sandbox).</summary>
    private List<(int Pid, long Ticks)> Commands()
    {
        var claude = _sandboxed
            ? Descendants(Pid).FirstOrDefault(p => Command(p.Pid) is not (null or "bwrap")) is { Pid: > 0 } bridge
                ? Descendants(bridge.Pid).FirstOrDefault().Pid
                : 0
            : Pid;
        return claude > 0 ? Descendants(claude) : [];
    }

    /// <summary>Signals the group, and the leader itself while it lives (in case setsid has not run yet; a reaped pid could be reused).</summary>
    private void Signal(int signal)
    {
        _ = kill(-Pid, signal);
        if (!_process.HasExited)
        {
            _ = kill(Pid, signal);
        }
    }

    /// <summary>Every process below <paramref name="root"/> now, with its start time (to tell a reused pid later).</summary>
    private static List<(int Pid, long Ticks)> Descendants(int root)
    {
        var parents = new Dictionary<int, List<(int, long)>>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), CultureInfo.InvariantCulture, out var pid) || Stat(pid) is not { } stat)
            {
                continue;
            }

            if (!parents.TryGetValue(stat.Parent, out var children))
            {
                parents[stat.Parent] = children = [];
            }

            children.Add((pid, stat.Ticks));
        }

        var found = new List<(int, long)>();
        var queue = new Queue<int>([root]);
        while (queue.TryDequeue(out var next))
        {
            foreach (var child in parents.GetValueOrDefault(next) ?? [])
            {
                found.Add(child);
                queue.Enqueue(child.Item1);
            }
        }

        return found;
    }

    private static void KillAll(List<(int Pid, long Ticks)> processes)
    {
        foreach (var (pid, ticks) in processes)
        {
            if (ProcessStartTicks(pid) == ticks)
            {
                _ = kill(pid, SigKill);
            }
        }
    }

    private static long? ProcessStartTicks(int pid) => Stat(pid)?.Ticks;

    /// <summary>Sends SIGINT to one process (for <see cref="ClaudeForwarder"/>, passing an interrupt on).</summary>
    internal static void Interrupt(int pid) => _ = kill(pid, SigInt);

    private static string? Command(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/comm").Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Fields of /proc/PID/stat: the parent (4th) and the start time in clock ticks since boot (22nd).</summary>
    private static (int Parent, long Ticks)? Stat(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' '); // fields from the 3rd on
            return fields[0] == "Z" ? null : (int.Parse(fields[1], CultureInfo.InvariantCulture), long.Parse(fields[19], CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    private async Task PumpStdoutAsync()
    {
        try
        {
            while (await _process.StandardOutput.ReadLineAsync().ConfigureAwait(false) is { } line)
            {
                if (line.Length > 0)
                {
                    _lines.Writer.TryWrite(line);
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
        }
        finally
        {
            _lines.Writer.TryComplete();
        }
    }

    private async Task PumpStderrAsync()
    {
        var buffer = new char[4096];
        try
        {
            int read;
            while ((read = await _process.StandardError.ReadAsync(buffer).ConfigureAwait(false)) > 0)
            {
                lock (_stderr)
                {
                    _stderr.Append(buffer, 0, read);
                    if (_stderr.Length > StderrKeep * 2)
                    {
                        _stderr.Remove(0, _stderr.Length - StderrKeep);
                    }
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            await StopAsync().ConfigureAwait(false);
        }

        _process.Dispose();
    }

    // DllImport rather than LibraryImport: the generated marshalling needs AllowUnsafeBlocks, and kill's ints need none.
    [DllImport("libc", SetLastError = true)]
#pragma warning disable SYSLIB1054
    private static extern int kill(int pid, int sig);
#pragma warning restore SYSLIB1054
}

/// <summary>Claude Code cannot be run (not installed, not startable); the message says what to do.</summary>
public sealed class ClaudeEngineException(string message) : Exception(message);
