using System.Runtime.InteropServices;

namespace Offload.Cli;

/// <summary>
/// The daemon is its own program, <c>offload-daemon</c>, next to this one: the CLI stays small and starts in
/// milliseconds (Native AOT when published), the daemon keeps the web host, the store and the model clients.
/// </summary>
internal static partial class DaemonProgram
{
    /// <summary>The command line that starts it: its apphost, or <c>dotnet offload-daemon.dll</c> where there is none.</summary>
    public static IReadOnlyList<string> Command()
    {
        var directory = Path.GetDirectoryName(Environment.ProcessPath) is { } self && File.Exists(Path.Combine(self, "offload-daemon"))
            ? self
            : AppContext.BaseDirectory;
        var apphost = Path.Combine(directory, "offload-daemon");
        if (File.Exists(apphost))
        {
            return [apphost];
        }

        var assembly = Path.Combine(directory, "offload-daemon.dll");
        if (File.Exists(assembly) && FindOnPath("dotnet") is { } dotnet)
        {
            return [dotnet, assembly];
        }

        throw new CliException(ExitCodes.Daemon, $"offload-daemon is missing from {directory}",
            "reinstall Offload (./install.sh): the offload and offload-daemon programs are installed together");
    }

    /// <summary>
    /// Runtime settings for the daemon that only the environment can carry (they have no runtimeconfig.json name; the
    /// rest are in Offload.Daemon.csproj). Set for the daemon however it starts (<see cref="Exec"/> and
    /// <c>DaemonClient</c>'s detached start), unless the user's environment sets them already.
    /// <list type="bullet">
    /// <item><c>DOTNET_GCgen0size</c> 4 MiB: the default gen0 budget, sized from the CPU's cache, lets the heap grow by
    /// more between collections; with 4 MiB, 10 running tasks take 46 MiB RSS instead of 56 MiB in the Native AOT
    /// daemon (101 instead of 113 MiB in the JIT daemon it replaced), at the same CPU per turn (docs/benchmarks.md).</item>
    /// <item><c>DOTNET_GCRegionSize</c> 1 MiB instead of 4: the heap is committed in smaller steps; 50 running tasks take
    /// 110 MiB instead of 116 MiB.</item>
    /// </list>
    /// </summary>
    public static readonly IReadOnlyList<KeyValuePair<string, string>> RuntimeEnvironment =
    [
        // Hex without "0x": CoreCLR reads either form, the Native AOT runtime silently ignores a value with the prefix.
        new("DOTNET_GCgen0size", "400000"),
        new("DOTNET_GCRegionSize", "100000"),
    ];

    /// <summary>Replaces this process with the daemon program (same pid, same terminal and signals); returns only on failure.</summary>
    public static int Exec(string[] arguments)
    {
        string[] argv = [.. Command(), .. arguments];
        var pointers = new IntPtr[argv.Length + 1];
        try
        {
            for (var i = 0; i < argv.Length; i++)
            {
                pointers[i] = Marshal.StringToCoTaskMemUTF8(argv[i]);
            }

            foreach (var (name, value) in RuntimeEnvironment)
            {
                SetEnv(name, value, overwrite: 0); // execv passes this process's environment on
            }

            Console.Out.Flush();
            Console.Error.Flush();
            ExecV(argv[0], pointers);
            throw new CliException(ExitCodes.Daemon, $"could not start {argv[0]}: {Marshal.GetLastPInvokeErrorMessage()}",
                "reinstall Offload (./install.sh)");
        }
        finally
        {
            foreach (var pointer in pointers)
            {
                Marshal.FreeCoTaskMem(pointer);
            }
        }
    }

    /// <summary>The first <paramref name="name"/> in a folder of PATH, as a shell would find it; null when none.</summary>
    public static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name)).FirstOrDefault(File.Exists);

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    [LibraryImport("libc", EntryPoint = "execv", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ExecV(string path, IntPtr[] argv);
}
