using System.Globalization;
using System.Text.Json;
using Offload.Protocol;
using Offload.Tests.EndToEnd;

namespace Offload.Tests.Resilience;

/// <summary>Fault-making helpers on top of <see cref="OffloadHarness"/>: config, the daemon's pid, kill -9, live events.</summary>
public static class ResilienceKit
{
    /// <summary>Retries in milliseconds, a stalled stream given up after a second: what the fault tests need.</summary>
    public static object FastRetry(int maxTries = 4) => new
    {
        maxTries,
        baseDelay = "00:00:00.020",
        maxDelay = "00:00:00.100",
        idleTimeout = "00:00:01",
    };

    /// <summary>Writes OFFLOAD_HOME/config/config.json (read by the daemon when it starts).</summary>
    public static void WriteConfig(this OffloadHarness h, object config)
    {
        Directory.CreateDirectory(Path.Combine(h.OffloadHome, "config"));
        File.WriteAllText(Path.Combine(h.OffloadHome, "config", "config.json"), JsonSerializer.Serialize(config));
    }

    public static string Id(long id) => id.ToString(CultureInfo.InvariantCulture);

    /// <summary>The pid of the running daemon, starting one when none runs (<c>offload daemon start</c> prints it).</summary>
    public static async Task<int> DaemonPidAsync(this OffloadHarness h)
    {
        var start = await h.OffloadAsync("daemon", "start");
        Assert.True(start.ExitCode == 0, start.ToString());
        var pid = System.Text.RegularExpressions.Regex.Match(start.Stdout, @"pid (\d+)");
        Assert.True(pid.Success, start.ToString());
        return int.Parse(pid.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    public static bool IsAlive(int pid) =>
        File.Exists($"/proc/{pid}/stat") && !ReadStat(pid).Contains(") Z ", StringComparison.Ordinal);

    private static string ReadStat(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return ") Z ";
        }
    }

    /// <summary>
    /// The host pid of the process whose command line is exactly <paramref name="commandLine"/>, or null. Sandboxed
    /// commands run in their own pid namespace, so a pid they print means nothing out here: give them a unique argument.
    /// </summary>
    public static int? HostPidOf(string commandLine)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            try
            {
                if (int.TryParse(Path.GetFileName(dir), CultureInfo.InvariantCulture, out var pid)
                    && File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ').Trim() == commandLine && IsAlive(pid))
                {
                    return pid;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }

        return null;
    }

    /// <summary>A <c>sleep</c> command line no other process has: <c>sleep 3NNNNNN.5</c>.</summary>
    public static string UniqueSleep() => "sleep 3" + Random.Shared.Next(100_000, 999_999).ToString(CultureInfo.InvariantCulture) + ".5";

    /// <summary>SIGKILL, then wait until the process is gone (or a zombie nobody reaps).</summary>
    public static async Task KillNineAsync(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            process.Kill(); // SIGKILL on Unix
        }
        catch (ArgumentException)
        {
            return; // already gone
        }
        catch (InvalidOperationException)
        {
            return;
        }

        await WaitUntilAsync(() => !IsAlive(pid), TimeSpan.FromSeconds(10), $"pid {pid} survived SIGKILL");
    }

    public static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        using var cts = new CancellationTokenSource(timeout);
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(10));
        try
        {
            while (!condition())
            {
                await timer.WaitForNextTickAsync(cts.Token);
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{what} (waited {timeout})");
        }
    }

    /// <summary>
    /// Follows the live journals of <paramref name="ids"/> on the daemon's socket and returns as soon as one
    /// of them appends an event that matches (or has one already, with <paramref name="includePast"/>); null when
    /// none did within <paramref name="timeout"/> or the daemon went away.
    /// </summary>
    public static async Task<AgentEvent?> NextEventAsync(this OffloadHarness h, IReadOnlyCollection<long> ids, Func<AgentEvent, bool> match, TimeSpan timeout, bool includePast = false)
    {
        using var http = h.SocketClient();
        using var cts = new CancellationTokenSource(timeout);
        var followers = ids.Select(async id =>
        {
            try
            {
                var last = includePast ? 0 : await LastSeqAsync(http, id, cts.Token);
                using var response = await http.GetAsync($"v1/tasks/{id}/events?follow=1&untilDone=1&after={last}", HttpCompletionOption.ResponseHeadersRead, cts.Token);
                response.EnsureSuccessStatusCode();
                using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));
                while (await reader.ReadLineAsync(cts.Token) is { } line)
                {
                    if (line.StartsWith("data: ", StringComparison.Ordinal)
                        && JsonSerializer.Deserialize<AgentEvent>(line[6..], OffloadJson.Options) is { } e && match(e))
                    {
                        return e;
                    }
                }
            }
            catch (Exception e) when (e is OperationCanceledException or HttpRequestException or IOException)
            {
            }

            return null;
        }).ToList();
        try
        {
            while (followers.Count > 0)
            {
                var done = await Task.WhenAny(followers);
                followers.Remove(done);
                if (await done is { } found)
                {
                    return found;
                }
            }

            return null;
        }
        finally
        {
            await cts.CancelAsync();
            await ((Task)Task.WhenAll(followers)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private static async Task<long> LastSeqAsync(HttpClient http, long id, CancellationToken cancellationToken)
    {
        var text = await http.GetStringAsync($"v1/tasks/{id}/events", cancellationToken);
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return lines.Length == 0 ? 0 : JsonSerializer.Deserialize<AgentEvent>(lines[^1], OffloadJson.Options)!.Seq;
    }

    /// <summary>Asserts a journal is numbered 1..N with no gap and no repeat.</summary>
    public static void AssertGapless(IReadOnlyList<AgentEvent> events, string context)
    {
        var seqs = events.Select(e => e.Seq).ToList();
        Assert.True(seqs.SequenceEqual(Enumerable.Range(1, seqs.Count).Select(i => (long)i)),
            $"{context}: the event sequence is not 1..{seqs.Count}: {string.Join(",", seqs)}");
    }
}
