using System.Globalization;
using System.Runtime.InteropServices;

namespace Offload.Agent.Tools;

/// <summary>
/// The daemon's place in the cgroup tree, found once: under it each command gets a cgroup of its own with
/// <c>pids.max</c> and a memory limit. cgroup v1 (a <c>pids</c> and a <c>memory</c> hierarchy, as on this project's CI)
/// and v2 (one unified tree) are both handled. v2 lets a cgroup that holds processes have no children with controllers,
/// so there the daemon first moves itself into a leaf (<c>offload-daemon</c>) beside its commands' cgroups. Where the
/// tree cannot be written (a plain user without delegation, a read-only <c>/sys/fs/cgroup</c>) there are no cgroups and
/// <see cref="CommandLimits"/> falls back to rlimits; <see cref="Description"/> says which.
/// </summary>
public static class Cgroups
{
    private static readonly Lazy<Hierarchy?> Found = new(Detect);
    private static int _counter;

    /// <summary>"cgroup v1 (…)", "cgroup v2 (…)", or why there are none: for the daemon log and doctor.</summary>
    public static string Description => Found.Value is { } found ? found.Description : _why ?? "no cgroups";

    private static string? _why;

    /// <summary>A new cgroup with the limits set, or null when there are no cgroups (or making one failed).</summary>
    internal static Cgroup? Create(SandboxLimits limits)
    {
        if (limits.MaxProcesses <= 0 && limits.MaxMemoryMb <= 0 || Found.Value is not { } found)
        {
            return null;
        }

        var name = string.Create(CultureInfo.InvariantCulture, $"cmd-{Interlocked.Increment(ref _counter)}");
        var made = new List<string>();
        try
        {
            foreach (var parent in found.Parents)
            {
                var dir = Path.Combine(parent, name);
                Directory.CreateDirectory(dir);
                made.Add(dir);
            }

            var cgroup = new Cgroup(found.V2, [.. made]);
            cgroup.SetLimits(limits);
            return cgroup;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            foreach (var dir in made)
            {
                TryRemove(dir);
            }

            return null;
        }
    }

    /// <param name="Parents">Where commands' cgroups are made: v1, one folder per controller (pids, memory); v2, one.</param>
    private sealed record Hierarchy(bool V2, string[] Parents, string Description);

    private static Hierarchy? Detect()
    {
        var found = Find();
        if (found is not null)
        {
            // Commands' cgroups are removed as they end; their parent goes with the daemon (or at the next start, after a crash).
            AppDomain.CurrentDomain.ProcessExit += (_, _) =>
            {
                foreach (var parent in found.Parents)
                {
                    TryRemove(parent);
                }
            };
        }

        return found;
    }

    private static Hierarchy? Find()
    {
        try
        {
            var own = File.ReadAllLines("/proc/self/cgroup").Select(l => l.Split(':', 3)).Where(p => p.Length == 3).ToList();
            var mounts = File.ReadAllLines("/proc/self/mountinfo").Select(Mount.Parse).OfType<Mount>().ToList();
            var daemon = string.Create(CultureInfo.InvariantCulture, $"offload-{Environment.ProcessId}");

            // v1 when pids and memory are there (a controller is in one hierarchy only, so then v2 has neither).
            var v1 = new[] { "pids", "memory" }.Select(controller =>
            {
                var mount = mounts.FirstOrDefault(m => m.Type == "cgroup" && m.Options.Split(',').Contains(controller));
                var path = own.FirstOrDefault(p => p[1].Split(',').Contains(controller))?[2];
                return mount is null || path is null ? null : mount.Resolve(path);
            }).ToArray();
            if (v1.All(d => d is not null))
            {
                var parents = v1.Select(d => Path.Combine(d!, daemon)).ToArray();
                foreach (var dir in v1)
                {
                    RemoveStale(dir!);
                }

                foreach (var parent in parents)
                {
                    Directory.CreateDirectory(parent);
                }

                return new Hierarchy(false, parents, $"cgroup v1 ({string.Join(", ", parents)})");
            }

            var unified = mounts.FirstOrDefault(m => m.Type == "cgroup2");
            var unifiedPath = own.FirstOrDefault(p => p[0] == "0")?[2];
            if (unified is null || unifiedPath is null || unified.Resolve(unifiedPath) is not { } ownDir)
            {
                _why = "no cgroup with the pids and memory controllers is mounted";
                return null;
            }

            var available = File.ReadAllText(Path.Combine(ownDir, "cgroup.controllers")).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (!available.Contains("pids") || !available.Contains("memory"))
            {
                _why = $"the daemon's cgroup {ownDir} has no pids and memory controllers to hand down";
                return null;
            }

            RemoveStale(ownDir);
            var enable = Path.Combine(ownDir, "cgroup.subtree_control");
            if (!TryWrite(enable, "+pids +memory"))
            {
                // Processes may not live in a cgroup whose children have controllers: the daemon moves into a leaf of its own.
                var leaf = Path.Combine(ownDir, daemon + "-daemon");
                Directory.CreateDirectory(leaf);
                File.WriteAllText(Path.Combine(leaf, "cgroup.procs"), Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
                if (!TryWrite(enable, "+pids +memory"))
                {
                    _why = $"{ownDir} holds other processes than the daemon, so its children cannot have controllers";
                    return null;
                }
            }

            var parent2 = Path.Combine(ownDir, daemon);
            Directory.CreateDirectory(parent2);
            if (!TryWrite(Path.Combine(parent2, "cgroup.subtree_control"), "+pids +memory"))
            {
                _why = $"{parent2} does not hand the pids and memory controllers down";
                TryRemove(parent2);
                return null;
            }

            return new Hierarchy(true, [parent2], $"cgroup v2 ({parent2})");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _why = $"the cgroup tree cannot be written here ({e.Message})";
            return null;
        }
    }

    /// <summary>Removes what daemons that died left (<c>offload-&lt;pid&gt;</c> folders whose commands all ended).</summary>
    private static void RemoveStale(string dir)
    {
        foreach (var stale in Directory.EnumerateDirectories(dir, "offload-*"))
        {
            if (int.TryParse(Path.GetFileName(stale)["offload-".Length..].Split('-')[0], CultureInfo.InvariantCulture, out var pid)
                && (pid == Environment.ProcessId || Directory.Exists($"/proc/{pid}")))
            {
                continue;
            }

            foreach (var child in Directory.EnumerateDirectories(stale, "cmd-*"))
            {
                TryRemove(child);
            }

            TryRemove(stale);
        }
    }

    internal static bool TryWrite(string path, string value)
    {
        try
        {
            File.WriteAllText(path, value);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>A cgroup is removed with rmdir (a non-recursive delete), never by deleting its files; it fails while processes are in it.</summary>
    internal static bool TryRemove(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: false);
            return true;
        }
        catch (DirectoryNotFoundException)
        {
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>A line of /proc/self/mountinfo: its root in the file system, where it is mounted, its type and options.</summary>
    private sealed record Mount(string Root, string Point, string Type, string Options)
    {
        public static Mount? Parse(string line)
        {
            var dash = line.IndexOf(" - ", StringComparison.Ordinal);
            var fields = line[..Math.Max(dash, 0)].Split(' ');
            var rest = dash < 0 ? [] : line[(dash + 3)..].Split(' ');
            return fields.Length < 5 || rest.Length < 3 ? null : new Mount(Unescape(fields[3]), Unescape(fields[4]), rest[0], rest[2]);
        }

        /// <summary>Where a cgroup path (as /proc/self/cgroup names it) is under this mount; null when outside it.</summary>
        public string? Resolve(string cgroupPath)
        {
            var root = Root.TrimEnd('/');
            if (cgroupPath != root && !cgroupPath.StartsWith(root + "/", StringComparison.Ordinal))
            {
                return null;
            }

            var dir = Point.TrimEnd('/') + cgroupPath[root.Length..];
            return Directory.Exists(dir) ? dir : null;
        }

        private static string Unescape(string field) => field.Replace("\\040", " ", StringComparison.Ordinal);
    }
}

/// <summary>One command's cgroup: one folder per hierarchy (v1) or one (v2).</summary>
internal sealed class Cgroup(bool v2, string[] dirs)
{
    /// <summary>The <c>cgroup.procs</c> files a process writes its pid to, to join.</summary>
    public IReadOnlyList<string> ProcsFiles { get; } = [.. dirs.Select(d => Path.Combine(d, "cgroup.procs"))];

    public void SetLimits(SandboxLimits limits)
    {
        var pids = dirs[0];
        var memory = dirs[^1];
        if (limits.MaxProcesses > 0)
        {
            File.WriteAllText(Path.Combine(pids, "pids.max"), limits.MaxProcesses.ToString(CultureInfo.InvariantCulture));
        }

        if (limits.MaxMemoryMb > 0)
        {
            var bytes = (limits.MaxMemoryMb * 1024L * 1024).ToString(CultureInfo.InvariantCulture);
            if (v2)
            {
                File.WriteAllText(Path.Combine(memory, "memory.max"), bytes);
                Cgroups.TryWrite(Path.Combine(memory, "memory.swap.max"), "0"); // no swap controller, or none configured: fine
                Cgroups.TryWrite(Path.Combine(memory, "memory.oom.group"), "1");
            }
            else
            {
                File.WriteAllText(Path.Combine(memory, "memory.limit_in_bytes"), bytes);
                Cgroups.TryWrite(Path.Combine(memory, "memory.memsw.limit_in_bytes"), bytes); // with swap accounting: swap counts too
            }
        }
    }

    /// <summary>A fork failed at <c>pids.max</c> (pids.events: <c>max N</c>).</summary>
    public bool ProcessLimitReached() => ProcessLimitHits() > 0;

    /// <summary>The kernel killed a process of the command at the memory limit.</summary>
    public bool MemoryLimitReached() => MemoryLimitHits() > 0;

    /// <summary>How many forks failed at <c>pids.max</c> so far.</summary>
    public long ProcessLimitHits() => Counter(Path.Combine(dirs[0], "pids.events"), "max");

    /// <summary>How many processes the kernel killed at the memory limit so far.</summary>
    public long MemoryLimitHits() => Counter(Path.Combine(dirs[^1], v2 ? "memory.events" : "memory.oom_control"), "oom_kill");

    /// <summary>Kills what is left in the cgroup, waits (≤ 2 s) until it is empty, and removes it.</summary>
    public async Task RemoveAsync()
    {
        for (var attempt = 0; attempt < 100; attempt++)
        {
            var left = dirs.SelectMany(d => Pids(Path.Combine(d, "cgroup.procs"))).ToList();
            if (left.Count == 0 && dirs.All(Cgroups.TryRemove))
            {
                return;
            }

            foreach (var pid in left)
            {
                _ = kill(pid, 9);
            }

            await Task.Delay(20).ConfigureAwait(false);
        }
        // Left for the next daemon start (Cgroups.RemoveStale); a process that would not die holds it.
    }

    private static long Counter(string file, string name)
    {
        try
        {
            foreach (var line in File.ReadLines(file))
            {
                var parts = line.Split(' ', 2);
                if (parts.Length == 2 && parts[0] == name && long.TryParse(parts[1], CultureInfo.InvariantCulture, out var value))
                {
                    return value;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }

        return 0;
    }

    private static IEnumerable<int> Pids(string procs)
    {
        try
        {
            return [.. File.ReadAllLines(procs).Select(l => int.TryParse(l, CultureInfo.InvariantCulture, out var pid) ? pid : 0).Where(p => p > 0)];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    [DllImport("libc", SetLastError = true)]
#pragma warning disable SYSLIB1054
    private static extern int kill(int pid, int sig);
#pragma warning restore SYSLIB1054
}
