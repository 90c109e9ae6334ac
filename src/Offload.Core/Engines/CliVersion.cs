using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace Offload.Engines;

/// <summary>
/// What <c>EXECUTABLE --version</c> prints, with the path (for the journal's engine note of a CLI engine), asked once
/// per binary: the cache is keyed by path and modification time, so an upgraded CLI is asked again.
/// </summary>
public static class CliVersion
{
    private static readonly ConcurrentDictionary<string, string> Known = new(StringComparer.Ordinal);

    public static async Task<string> OfAsync(string executable, IReadOnlyDictionary<string, string> environment, CancellationToken cancellationToken)
    {
        var key = executable + "\n" + File.GetLastWriteTimeUtc(executable).Ticks.ToString(CultureInfo.InvariantCulture);
        if (Known.TryGetValue(key, out var known))
        {
            return known;
        }

        var info = new ProcessStartInfo(executable, "--version")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        info.Environment.Clear();
        foreach (var (name, value) in environment)
        {
            info.Environment[name] = value;
        }

        using var process = Process.Start(info)!;
        process.StandardInput.Close();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        var output = await process.StandardOutput.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        var version = $"{output.Trim()} ({executable})";
        Known[key] = version;
        return version;
    }
}
