using System.Globalization;

namespace Offload.Bench;

/// <summary>Resident memory and CPU time of processes, read from /proc (Linux only, like Offload).</summary>
public static class Procfs
{
    /// <summary>Kernel clock ticks per second for utime/stime (USER_HZ; 100 on every mainstream Linux).</summary>
    public const double TicksPerSecond = 100;

    /// <summary><paramref name="root"/> and all its descendants that are alive now.</summary>
    public static List<int> Tree(int root)
    {
        var parents = new Dictionary<int, int>();
        foreach (var pid in AllPids())
        {
            if (Stat(pid) is { } fields)
            {
                parents[pid] = int.Parse(fields[1], CultureInfo.InvariantCulture);
            }
        }

        var tree = new List<int> { root };
        for (var i = 0; i < tree.Count; i++)
        {
            tree.AddRange(parents.Where(p => p.Value == tree[i]).Select(p => p.Key));
        }

        return tree.Where(p => parents.ContainsKey(p)).ToList();
    }

    /// <summary>Processes whose environment has <paramref name="key"/>=<paramref name="value"/> (e.g. a temp HOME).</summary>
    public static List<int> WithEnvironment(string key, string value)
    {
        var wanted = $"{key}={value}";
        var found = new List<int>();
        foreach (var pid in AllPids())
        {
            try
            {
                var environ = File.ReadAllText($"/proc/{pid}/environ");
                if (environ.Split('\0').Contains(wanted, StringComparer.Ordinal))
                {
                    found.Add(pid);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }

        return found;
    }

    /// <summary>Sum of VmRSS and of Pss (proportional set size: shared pages split between sharers), in KiB.</summary>
    public static Memory MemoryOf(IEnumerable<int> pids)
    {
        long rss = 0, pss = 0;
        var count = 0;
        foreach (var pid in pids)
        {
            try
            {
                rss += Field(File.ReadAllLines($"/proc/{pid}/status"), "VmRSS:");
                pss += Field(File.ReadAllLines($"/proc/{pid}/smaps_rollup"), "Pss:");
                count++;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }

        return new Memory(rss, pss, count);
    }

    /// <summary>utime + stime of one process in milliseconds (its own threads, not its children).</summary>
    public static double CpuMs(int pid)
    {
        var fields = Stat(pid) ?? throw new InvalidOperationException($"process {pid} is gone");
        // fields[0] is the state (field 3 of stat); utime and stime are fields 14 and 15.
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return ticks * 1000 / TicksPerSecond;
    }

    /// <summary>CPU time of the children <paramref name="pid"/> has waited for (cutime + cstime): its git processes, say.</summary>
    public static double ChildrenCpuMs(int pid)
    {
        var fields = Stat(pid) ?? throw new InvalidOperationException($"process {pid} is gone");
        var ticks = long.Parse(fields[13], CultureInfo.InvariantCulture) + long.Parse(fields[14], CultureInfo.InvariantCulture);
        return ticks * 1000 / TicksPerSecond;
    }

    public static bool Alive(int pid) => Directory.Exists($"/proc/{pid}");

    /// <summary>The fields of /proc/PID/stat after the command name, or null when the process is gone.</summary>
    private static string[]? Stat(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid}/stat");
            return text[(text.LastIndexOf(')') + 2)..].Split(' ');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static IEnumerable<int> AllPids() =>
        Directory.EnumerateDirectories("/proc")
            .Select(d => int.TryParse(Path.GetFileName(d), out var pid) ? pid : 0)
            .Where(pid => pid > 0);

    private static long Field(string[] lines, string name)
    {
        var line = lines.FirstOrDefault(l => l.StartsWith(name, StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line[name.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
    }
}

/// <summary>Resident memory of a set of processes, KiB.</summary>
public readonly record struct Memory(long RssKb, long PssKb, int Processes)
{
    public double RssMiB => RssKb / 1024.0;
    public double PssMiB => PssKb / 1024.0;
}

/// <summary>CPU time of reaped child processes (getrusage RUSAGE_CHILDREN): what a finished CLI call cost, whatever the load.</summary>
public static partial class ChildCpu
{
    public static double TotalMs()
    {
        if (GetRusage(-1, out var usage) != 0)
        {
            return double.NaN;
        }

        return (usage.UserSec + usage.SystemSec) * 1000.0 + (usage.UserMicros + usage.SystemMicros) / 1000.0;
    }

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct Rusage
    {
        public long UserSec;
        public long UserMicros;
        public long SystemSec;
        public long SystemMicros;
        public long MaxRss, Ixrss, Idrss, Isrss, Minflt, Majflt, Nswap, Inblock, Oublock, Msgsnd, Msgrcv, Nsignals, Nvcsw, Nivcsw;
    }

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "getrusage")]
    private static partial int GetRusage(int who, out Rusage usage);
}
