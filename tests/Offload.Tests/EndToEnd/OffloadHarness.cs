using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Offload.Protocol;

namespace Offload.Tests.EndToEnd;

/// <summary>
/// A sandbox for end-to-end tests: its own OFFLOAD_HOME and HOME in a temp folder, a real git
/// repository, and the real <c>offload</c> executable (which starts the real daemon on its socket).
/// The test process's own environment is never changed: variables are passed to the children.
/// </summary>
public sealed class OffloadHarness : IAsyncDisposable
{
    public string Root { get; }
    public string OffloadHome { get; }
    public string Home { get; }
    public string Repo { get; }
    public Dictionary<string, string?> Env { get; }

    /// <summary>
    /// The <c>offload</c> under test: the published one (Native AOT, with <c>offload-daemon</c> beside it) when test.sh
    /// names its folder in OFFLOAD_TEST_PROGRAMS, else the plain build next to this assembly.
    /// </summary>
    public static string Executable => Path.Combine(
        Environment.GetEnvironmentVariable("OFFLOAD_TEST_PROGRAMS") is { Length: > 0 } published ? published : AppContext.BaseDirectory, "offload");

    /// <summary>
    /// The uid (and gid) every process of this harness runs as, through <c>setpriv</c>, when a test run as root plays a
    /// plain user; null: the test's own user.
    /// </summary>
    public int? RunAsUid { get; }

    /// <param name="parentDir">Where the temp folder goes (default: the system temp folder). Sandbox tests use
    /// /var/tmp, since a sandboxed command sees a private /tmp.</param>
    /// <param name="runAsUid">Run git, offload and so the daemon as this uid (gid the same), owning the temp folder: a
    /// root test process plays a plain user (<see cref="GiveToUser"/> hands it files the test writes later).</param>
    public OffloadHarness(string? parentDir = null, int? runAsUid = null)
    {
        RunAsUid = runAsUid;
        Root = parentDir is null
            ? Directory.CreateTempSubdirectory("offload-e2e-").FullName
            : Directory.CreateDirectory(Path.Combine(parentDir, "offload-e2e-" + Path.GetRandomFileName().Replace(".", "", StringComparison.Ordinal))).FullName;
        OffloadHome = Path.Combine(Root, "offload-home");
        Home = Path.Combine(Root, "home");
        Repo = Path.Combine(Root, "repo");
        Directory.CreateDirectory(Home);
        Directory.CreateDirectory(Repo);
        Env = new()
        {
            ["OFFLOAD_HOME"] = OffloadHome,
            ["HOME"] = Home,
            ["XDG_DATA_HOME"] = null,
            ["XDG_CONFIG_HOME"] = null,
            ["XDG_RUNTIME_DIR"] = null,
            ["ANTHROPIC_API_KEY"] = null,
            ["OPENAI_API_KEY"] = null,
            ["NO_COLOR"] = "1",
            ["GIT_AUTHOR_NAME"] = "Test",
            ["GIT_AUTHOR_EMAIL"] = "test@example.com",
            ["GIT_COMMITTER_NAME"] = "Test",
            ["GIT_COMMITTER_EMAIL"] = "test@example.com",
        };
        GiveToUser();
        Git("init", "-q", "-b", "main");
        File.WriteAllText(Path.Combine(Repo, "README.md"), "# sample\n");
        File.WriteAllText(Path.Combine(Repo, "app.py"), "print('hello')\n");
        Git("add", "-A");
        Git("commit", "-q", "-m", "initial");
    }

    /// <summary>Makes everything under <see cref="Root"/> the <see cref="RunAsUid"/> user's (nothing when there is none).</summary>
    public void GiveToUser()
    {
        if (RunAsUid is not { } uid)
        {
            return;
        }

        var chown = RunProcessAsTest("chown", ["-R", $"{uid}:{uid}", Root], Root).GetAwaiter().GetResult();
        Assert.True(chown.ExitCode == 0, chown.ToString());
    }

    public string SocketPath => Path.Combine(OffloadHome, "run", "offload.sock");

    /// <summary>Writes a scenario file and returns the <c>sim:</c> model that selects it.</summary>
    public string Scenario(string name, object scenario)
    {
        var path = Path.Combine(Root, name + ".json");
        File.WriteAllText(path, JsonSerializer.Serialize(scenario));
        return "sim:" + path;
    }

    public string Git(params string[] args)
    {
        var result = RunProcess("git", args, Repo, null, TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
        Assert.True(result.ExitCode == 0, $"git {string.Join(' ', args)} failed: {result.Stderr}");
        return result.Stdout;
    }

    public Task<CliResult> OffloadAsync(params string[] args) => OffloadInAsync(Repo, null, args);

    public Task<CliResult> OffloadInAsync(string workDir, string? stdin, params string[] args) =>
        RunProcess(Executable, args, workDir, stdin, TimeSpan.FromSeconds(90));

    /// <summary>Follows the task's journal (SSE on the daemon's socket) until an event of type T that matches arrives (60 s at most).</summary>
    public async Task<T> WaitForEventAsync<T>(long id, Func<T, bool>? match = null) where T : AgentEvent
    {
        await OffloadAsync("daemon", "start");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var http = SocketClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"v1/tasks/{id}/events?follow=1");
        request.Headers.Accept.ParseAdd("text/event-stream");
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));
        while (await reader.ReadLineAsync(cts.Token) is { } line)
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal)
                && JsonSerializer.Deserialize<AgentEvent>(line[6..], OffloadJson.Options) is T e && (match is null || match(e)))
            {
                return e;
            }
        }

        throw new InvalidOperationException($"task {id}'s journal ended without a {typeof(T).Name}");
    }

    /// <summary>Runs another program in the repository with the environment Offload gets (a shell sourcing a completion script).</summary>
    public Task<CliResult> RunAsync(string file, params string[] args) => RunProcess(file, args, Repo, null, TimeSpan.FromSeconds(90));

    /// <summary>Starts <c>offload</c> without waiting for it (e.g. <c>logs -f</c>), lines arriving on a channel.</summary>
    public Process Start(params string[] args)
    {
        var info = StartInfo(Executable, args, Repo);
        info.RedirectStandardInput = false;
        return Process.Start(info)!;
    }

    public async Task<TaskInfo> RunTaskAsync(string model, string prompt, params string[] extra)
    {
        var result = await OffloadAsync(["run", "--json", "--model", model, .. extra, prompt]);
        Assert.True(result.ExitCode == 0, $"offload run failed ({result.ExitCode}): {result.Stderr}");
        return JsonSerializer.Deserialize<TaskInfo>(result.Stdout, OffloadJson.Options)!;
    }

    public async Task<TaskInfo> WaitAsync(long id, TimeSpan? timeout = null)
    {
        var result = await RunProcess(Executable, ["wait", "--until", "done", "--json", id.ToString(System.Globalization.CultureInfo.InvariantCulture)], Repo, null, timeout ?? TimeSpan.FromSeconds(90));
        return JsonSerializer.Deserialize<TaskInfo[]>(result.Stdout, OffloadJson.Options)![0];
    }

    public async Task<TaskInfo> ShowAsync(long id)
    {
        var result = await OffloadAsync("show", "--json", id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(result.ExitCode == 0, result.Stderr);
        return JsonSerializer.Deserialize<TaskInfo>(result.Stdout, OffloadJson.Options)!;
    }

    public async Task<List<AgentEvent>> EventsAsync(long id)
    {
        var result = await OffloadAsync("logs", "--json", id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(result.ExitCode == 0, result.Stderr);
        return result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonSerializer.Deserialize<AgentEvent>(l, OffloadJson.Options)!).ToList();
    }

    /// <summary>An HTTP client on the daemon's Unix socket, for SSE-level tests.</summary>
    /// <summary>Writes an executable shell script named <paramref name="name"/> into a folder put first on the PATH Offload gets.</summary>
    public void InstallOnPath(string name, string script)
    {
        var bin = Path.Combine(Root, "bin");
        Directory.CreateDirectory(bin);
        var path = Path.Combine(bin, name);
        File.WriteAllText(path, script);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var current = Env.TryGetValue("PATH", out var set) && set is not null ? set : Environment.GetEnvironmentVariable("PATH") ?? "";
        if (!current.StartsWith(bin + ":", StringComparison.Ordinal))
        {
            Env["PATH"] = bin + ":" + current;
        }
    }

    public HttpClient SocketClient() => new(new SocketsHttpHandler
    {
        ConnectCallback = async (_, ct) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath), ct);
            return new NetworkStream(socket, ownsSocket: true);
        },
    })
    { BaseAddress = new Uri("http://offload/"), Timeout = TimeSpan.FromSeconds(60) };

    private ProcessStartInfo StartInfo(string file, IEnumerable<string> args, string workDir, bool asTest = false)
    {
        if (RunAsUid is { } uid && !asTest)
        {
            args = [$"--reuid={uid}", $"--regid={uid}", "--clear-groups", "--", file, .. args];
            file = "setpriv";
        }

        var info = new ProcessStartInfo(file)
        {
            WorkingDirectory = workDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        foreach (var (key, value) in Env)
        {
            if (value is null)
            {
                info.Environment.Remove(key);
            }
            else
            {
                info.Environment[key] = value;
            }
        }

        return info;
    }

    private Task<CliResult> RunProcessAsTest(string file, IEnumerable<string> args, string workDir) =>
        RunProcess(file, args, workDir, null, TimeSpan.FromSeconds(30), asTest: true);

    private async Task<CliResult> RunProcess(string file, IEnumerable<string> args, string workDir, string? stdin, TimeSpan timeout, bool asTest = false)
    {
        using var process = Process.Start(StartInfo(file, args, workDir, asTest))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
        }

        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish within {timeout}");
        }

        return new CliResult(process.ExitCode, await stdout, await stderr);
    }

    public async ValueTask DisposeAsync()
    {
        // The daemon holds its lock file exclusively, so its pid comes from the API, not the file.
        int? pid = null;
        try
        {
            var status = await OffloadAsync("daemon", "status", "--json");
            if (status.ExitCode == 0)
            {
                using var json = JsonDocument.Parse(status.Stdout);
                pid = json.RootElement.GetProperty("pid").GetInt32();
            }

            await OffloadAsync("daemon", "stop");
        }
        catch (Exception e) when (e is TimeoutException or JsonException or KeyNotFoundException)
        {
        }

        if (pid is { } alive && Directory.Exists($"/proc/{alive}"))
        {
            try
            {
                Process.GetProcessById(alive).Kill(entireProcessTree: true);
            }
            catch (ArgumentException)
            {
            }
            catch (InvalidOperationException)
            {
            }
        }

        try
        {
            await RunProcess("git", ["worktree", "prune"], Repo, null, TimeSpan.FromSeconds(10));
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
}

/// <summary>Scenario-building shorthands (the Simulator's JSON format).</summary>
public static class Turns
{
    public static object Tool(string name, object input, string text = "", int delayMs = 0) =>
        new { text, toolCalls = new[] { new { name, input } }, delayMs };

    public static object Final(string text, int delayMs = 0) => new { text, delayMs };

    public static object Scenario(params object[] turns) => new { name = "test", turns };
}
