using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Offload.Config;
using Offload.Protocol;

namespace Offload.Cli;

/// <summary>
/// The CLI's only way to Offload's state: HTTP/JSON over the daemon's Unix socket. Starts the
/// daemon when nothing answers, and refuses a daemon of another version.
/// </summary>
public sealed class DaemonClient : IDisposable
{
    private readonly HttpClient _http;

    public OffloadPaths Paths { get; }

    public DaemonClient(OffloadPaths paths)
    {
        Paths = paths;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(paths.Socket), ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
            UseProxy = false,
        };
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://offload/"), Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>This CLI's version; the daemon it talks to must be the same (both are built from one tree).</summary>
    public static string Version => typeof(DaemonClient).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    /// <summary>Whether a daemon answers; a daemon of another version is an error.</summary>
    public async Task<DaemonStatusResponse?> TryStatusAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            using var response = await _http.GetAsync("v1/daemon", cancellationToken);
            var status = await ReadAsync<DaemonStatusResponse>(response, cancellationToken);
            if (status.Version != Version)
            {
                throw new CliException(ExitCodes.Daemon,
                    $"the daemon answering on {Paths.Socket} is version {status.Version}, this offload is {Version}",
                    "stop it with the offload that started it (`offload daemon stop`), then run this command again");
            }

            return status;
        }
        catch (HttpRequestException e) when (e.InnerException is SocketException or IOException)
        {
            return null; // nothing listens, or the connection kept from before went with a daemon that died
        }
    }

    /// <summary>
    /// Makes sure a daemon answers, starting one in the background if needed. A daemon that cannot start says why
    /// in its log and exits; that reason is what the user sees, at once.
    /// </summary>
    public async Task<DaemonStatusResponse> EnsureDaemonAsync(CancellationToken cancellationToken = default)
    {
        if (await TryStatusAsync(cancellationToken) is { } running)
        {
            return running;
        }

        try
        {
            // The daemon would refuse to start on a config that does not load; saying so here names the file and place
            // at once, as a bad-input error (a running daemon keeps the settings it had when the file stops loading).
            OffloadConfig.Load(Paths.ConfigFile);
        }
        catch (ConfigException e)
        {
            throw new CliException(ExitCodes.BadInput, e.Message, e.Hint);
        }

        var logStart = File.Exists(Paths.DaemonLog) ? new FileInfo(Paths.DaemonLog).Length : 0;
        var pid = StartDaemonProcess();
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(20))
        {
            if (File.Exists(Paths.Socket) && await TryStatusAsync(cancellationToken) is { } started)
            {
                return started;
            }

            if (pid is { } daemon && !ProcessAlive(daemon))
            {
                var (reason, hint) = StartFailure(logStart);
                if (!reason.StartsWith("disk full at ", StringComparison.Ordinal) && Store.DiskFullException.IsFull(Paths.DataDir))
                {
                    // On a full disk its own words may not have reached its log: the lack of room is the reason.
                    var full = new Store.DiskFullException(Paths.DataDir);
                    (reason, hint) = ($"{full.Message}: the daemon cannot start without room for its database", full.Hint);
                }

                if (!reason.Contains("is already running", StringComparison.Ordinal))
                {
                    throw new CliException(ExitCodes.Daemon, $"the daemon could not start: {reason}",
                        hint ?? $"fix what it says, then run the command again; its log is {Paths.DaemonLog}");
                }

                // Another daemon holds the lock: one just started by another command (its socket answers soon), or
                // one on its way out (it has already removed its socket). Try again in a moment.
                await Task.Delay(100, cancellationToken);
                logStart = File.Exists(Paths.DaemonLog) ? new FileInfo(Paths.DaemonLog).Length : 0;
                pid = StartDaemonProcess();
                continue;
            }

            await Task.Delay(15, cancellationToken);
        }

        var log = File.Exists(Paths.DaemonLog) ? string.Join("\n", File.ReadLines(Paths.DaemonLog).TakeLast(8)) : "(no log)";
        throw new CliException(ExitCodes.Daemon, $"the daemon did not start within 20 s. Its log ({Paths.DaemonLog}) ends with:\n{log}",
            "fix what the log says, then run the command again; `offload daemon run` runs it in the foreground");
    }

    /// <summary>Starts <c>offload-daemon run</c> detached from this terminal; returns its pid when known.</summary>
    private int? StartDaemonProcess()
    {
        try
        {
            Directory.CreateDirectory(Paths.DataDir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var blocker = Path.GetDirectoryName(Paths.DataDir);
            while (blocker is not null && !Path.Exists(blocker))
            {
                blocker = Path.GetDirectoryName(blocker);
            }

            var why = blocker is not null && File.Exists(blocker) ? $"{blocker} is a file, not a folder" : e.Message;
            throw new CliException(ExitCodes.Daemon, $"cannot create Offload's data folder {Paths.DataDir}: {why}",
                "make the folder writable, or point OFFLOAD_HOME (or XDG_DATA_HOME) at one that is");
        }

        var command = string.Join(' ', DaemonProgram.Command().Select(Quote));
        // setsid: the daemon outlives this terminal; its stdio never holds the caller's pipes open.
        var start = new ProcessStartInfo("/bin/sh")
        {
            ArgumentList = { "-c", $"cd / && {{ exec setsid {command} run </dev/null >>{Quote(Paths.DaemonLog)} 2>&1 & }} && echo $!" },
            UseShellExecute = false,
            RedirectStandardOutput = true,
        };
        foreach (var (name, value) in DaemonProgram.RuntimeEnvironment)
        {
            start.Environment.TryAdd(name, value);
        }

        using var process = Process.Start(start) ?? throw new CliException(ExitCodes.Daemon, "could not start the daemon process");
        var pid = process.StandardOutput.ReadToEnd().Trim();
        process.WaitForExit();
        return int.TryParse(pid, System.Globalization.CultureInfo.InvariantCulture, out var id) ? id : null;
    }

    /// <summary>What a daemon that exited at start wrote to its log: the error line (and its hint), or the log's last lines.</summary>
    private (string Reason, string? Hint) StartFailure(long logStart)
    {
        string text;
        try
        {
            using var log = new FileStream(Paths.DaemonLog, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            log.Seek(Math.Min(logStart, log.Length), SeekOrigin.Begin);
            text = new StreamReader(log).ReadToEnd();
        }
        catch (IOException)
        {
            return ("it exited without writing a log", null);
        }

        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var error = lines.LastOrDefault(l => l.StartsWith("offload: ", StringComparison.Ordinal));
        if (error is null)
        {
            return ($"it exited; its log ({Paths.DaemonLog}) ends with:\n{string.Join("\n", lines.TakeLast(8))}", null);
        }

        var next = lines.SkipWhile(l => l != error).Skip(1).FirstOrDefault(l => l.StartsWith("  next: ", StringComparison.Ordinal));
        return (error["offload: ".Length..], next?["  next: ".Length..]);
    }

    private static bool ProcessAlive(int pid)
    {
        try
        {
            return !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static string Quote(string s) => "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>
    /// A read. Reads are safe to repeat, so one cut short because the daemon stopped or died (a long <c>wait</c>)
    /// is asked again of a new daemon, which resumes the tasks.
    /// </summary>
    public Task<T> GetAsync<T>(string path, CancellationToken cancellationToken = default) =>
        ReadAgainOnLossAsync(path, response => ReadAsync<T>(response, cancellationToken), cancellationToken);

    public Task<string> GetTextAsync(string path, CancellationToken cancellationToken = default) =>
        ReadAgainOnLossAsync(path, async response =>
        {
            await ThrowIfErrorAsync(response, cancellationToken);
            return await response.Content.ReadAsStringAsync(cancellationToken);
        }, cancellationToken);

    private async Task<T> ReadAgainOnLossAsync<T>(string path, Func<HttpResponseMessage, Task<T>> read, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            HttpResponseMessage response;
            try
            {
                response = await _http.GetAsync(path, cancellationToken);
            }
            catch (HttpRequestException) when (attempt < MaxReconnects && !cancellationToken.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50 * attempt), cancellationToken);
                await EnsureDaemonAsync(cancellationToken);
                continue;
            }

            using (response)
            {
                if (response.StatusCode == System.Net.HttpStatusCode.ServiceUnavailable && attempt < MaxReconnects)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(100 * attempt), cancellationToken);
                    await EnsureDaemonAsync(cancellationToken);
                    continue;
                }

                return await read(response);
            }
        }
    }

    private const int MaxReconnects = 5;

    public async Task<T> PostAsync<T>(string path, object? body, CancellationToken cancellationToken = default)
    {
        using var content = new StringContent(body is null ? "null" : JsonSerializer.Serialize(body, CliJson.Info(body.GetType())));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await _http.PostAsync(path, content, cancellationToken);
        return await ReadAsync<T>(response, cancellationToken);
    }

    public async Task PostAsync(string path, CancellationToken cancellationToken = default)
    {
        using var response = await _http.PostAsync(path, null, cancellationToken);
        await ThrowIfErrorAsync(response, cancellationToken);
    }

    /// <summary>
    /// A task's journal from <paramref name="after"/>, following live events when asked, until the task ends. A
    /// followed stream that breaks off before the task ended (the daemon stopped or died) goes on from the last event
    /// seen, with a new daemon, which resumes the task: nothing is missed or shown twice.
    /// </summary>
    public async IAsyncEnumerable<AgentEvent> EventsAsync(long id, long after, bool follow, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var last = after;
        var seenBefore = after;
        var ended = false;
        for (var reconnects = 0; ; reconnects++)
        {
            var url = $"v1/tasks/{id}/events?after={last}" + (follow ? "&follow=1&untilDone=1" : "");
            HttpResponseMessage? response = null;
            try
            {
                response = await _http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            }
            catch (HttpRequestException) when (follow && !cancellationToken.IsCancellationRequested)
            {
                // the daemon went away before this request reached it: reach a new one below
            }

            if (response is not null)
            {
                using (response)
                {
                    if (!(follow && response.StatusCode == System.Net.HttpStatusCode.ServiceUnavailable))
                    {
                        await ThrowIfErrorAsync(response, cancellationToken);
                        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken), Encoding.UTF8);
                        while (await ReadLineOrEndAsync(reader, follow, cancellationToken) is { } line)
                        {
                            var json = line.StartsWith("data: ", StringComparison.Ordinal) ? line[6..] : line.StartsWith('{') ? line : null;
                            if (json is not null && JsonSerializer.Deserialize(json, CliJson.Info<AgentEvent>()) is { } e && e.Seq > last)
                            {
                                last = e.Seq;
                                ended = e is StatusChanged { To: var to } && to.IsFinal();
                                yield return e;
                            }
                        }
                    }
                }
            }

            if (!follow || ended)
            {
                yield break;
            }

            if (last > seenBefore)
            {
                reconnects = 0; // the daemon just lost was reached and gave events: count only losses in a row
            }

            seenBefore = last;
            if (reconnects >= MaxReconnects)
            {
                throw new CliException(ExitCodes.Daemon, $"lost the daemon {reconnects} times in a row while following task {id}",
                    $"`offload daemon status` and its log ({Paths.DaemonLog}) say more; `offload logs {id} -f --after {last}` goes on from here");
            }

            // A daemon that goes away again while this one is being reached (killed as it starts, or its socket
            // refusing for a moment) is one more lost daemon, not the end of following.
            var over = false;
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50 * reconnects), cancellationToken);
                await EnsureDaemonAsync(cancellationToken);
                over = (await GetAsync<TaskReport>($"v1/tasks/{id}", cancellationToken)).Task.Status.IsFinal()
                    && (await GetTextAsync($"v1/tasks/{id}/events?after={last}", cancellationToken)).Length == 0;
            }
            catch (Exception e) when (e is HttpRequestException or IOException && !cancellationToken.IsCancellationRequested)
            {
            }

            if (over)
            {
                yield break;
            }
        }
    }

    /// <summary>The next line, or null at the end; when following, a connection cut by a dying daemon is an end too.</summary>
    private static async Task<string?> ReadLineOrEndAsync(StreamReader reader, bool follow, CancellationToken cancellationToken)
    {
        try
        {
            return await reader.ReadLineAsync(cancellationToken);
        }
        catch (Exception e) when (follow && e is IOException or HttpRequestException && !cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }

    private static async Task<T> ReadAsync<T>(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        await ThrowIfErrorAsync(response, cancellationToken);
        return (await response.Content.ReadFromJsonAsync(CliJson.Info<T>(), cancellationToken))!;
    }

    private static async Task ThrowIfErrorAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        ApiError? error = null;
        try
        {
            error = await response.Content.ReadFromJsonAsync(CliJson.Info<ApiError>(), cancellationToken);
        }
        catch (JsonException)
        {
        }

        if (error is null)
        {
            throw new CliException(ExitCodes.Error, $"the daemon answered {(int)response.StatusCode} {response.ReasonPhrase}");
        }

        throw new CliException(ExitCodes.FromApiCode(error.Code), error.Message, error.Hint);
    }

    public void Dispose() => _http.Dispose();
}
