using System.Diagnostics;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using Offload.Protocol;

namespace Offload.Bench;

/// <summary>
/// One Offload installation for one figure: a temp OFFLOAD_HOME and HOME, a real git repository, a config whose
/// <c>bench</c> provider points at the bench's Simulator, and the Release <c>offload</c> executable. The bench's own
/// environment is never changed; variables go to the child processes.
/// </summary>
public sealed class Sandbox : IAsyncDisposable
{
    private readonly HttpClient _api;

    public string Root { get; }
    public string OffloadHome { get; }
    public string Home { get; }
    public string Repo { get; }
    public string Executable { get; }
    public Dictionary<string, string?> Env { get; }
    public int DaemonPid { get; private set; }

    public string SocketPath => Path.Combine(OffloadHome, "run", "offload.sock");
    public string Database => Path.Combine(OffloadHome, "data", "offload.db");

    public Sandbox(string executable, Uri simulator, int maxParallel = 4, object? limits = null)
    {
        Executable = executable;
        Root = Directory.CreateTempSubdirectory("offload-bench-").FullName;
        OffloadHome = Path.Combine(Root, "offload-home");
        Home = Path.Combine(Root, "home");
        Repo = Path.Combine(Root, "repo");
        Directory.CreateDirectory(Home);
        Directory.CreateDirectory(Repo);
        Directory.CreateDirectory(Path.Combine(OffloadHome, "config"));
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
            ["GIT_AUTHOR_NAME"] = "Bench",
            ["GIT_AUTHOR_EMAIL"] = "bench@example.com",
            ["GIT_COMMITTER_NAME"] = "Bench",
            ["GIT_COMMITTER_EMAIL"] = "bench@example.com",
        };
        var config = new
        {
            maxParallel,
            limits = limits ?? new { maxTurns = 100_000, repeatLimit = 1_000_000 },
            models = new
            {
                providers = new Dictionary<string, object>
                {
                    ["bench"] = new { kind = "anthropic", baseUrl = simulator.ToString().TrimEnd('/'), apiKey = "bench" },
                },
            },
        };
        File.WriteAllText(Path.Combine(OffloadHome, "config", "config.json"), JsonSerializer.Serialize(config));
        MakeRepository(Repo, Env);
        _api = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath), ct);
                return new NetworkStream(socket, ownsSocket: true);
            },
            MaxConnectionsPerServer = 256,
        })
        { BaseAddress = new Uri("http://offload/"), Timeout = TimeSpan.FromMinutes(10) };
    }

    /// <summary>A small repository, like the one a developer hands off work in.</summary>
    public static void MakeRepository(string repo, IReadOnlyDictionary<string, string?> env)
    {
        Directory.CreateDirectory(repo);
        Run("git", ["init", "-q", "-b", "main"], repo, env);
        File.WriteAllText(Path.Combine(repo, "README.md"), "# sample\n\nA tiny project for the benchmark.\n");
        Directory.CreateDirectory(Path.Combine(repo, "src"));
        for (var i = 0; i < 20; i++)
        {
            File.WriteAllText(Path.Combine(repo, "src", $"module{i}.py"), $"def f{i}(x):\n    return x + {i}\n");
        }

        Run("git", ["add", "-A"], repo, env);
        Run("git", ["-c", "user.name=Bench", "-c", "user.email=bench@example.com", "commit", "-q", "-m", "initial"], repo, env);
    }

    /// <summary>Starts the daemon the way users do (`offload daemon start`) and remembers its pid.</summary>
    public async Task StartDaemonAsync()
    {
        var result = await OffloadAsync("daemon", "start");
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"offload daemon start failed: {result}");
        }

        DaemonPid = (await StatusAsync()).Pid;
    }

    public Task<DaemonStatusResponse> StatusAsync() => GetAsync<DaemonStatusResponse>("v1/daemon");

    public async Task<T> GetAsync<T>(string path, CancellationToken cancellationToken = default)
    {
        using var response = await _api.GetAsync(path, cancellationToken);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<T>(OffloadJson.Options, cancellationToken))!;
    }

    public async Task<TaskInfo> CreateTaskAsync(string model, string prompt)
    {
        using var response = await _api.PostAsJsonAsync("v1/tasks", new CreateTaskRequest(prompt, Repo, model), OffloadJson.Options);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"creating a task failed: {await response.Content.ReadAsStringAsync()}");
        }

        return (await response.Content.ReadFromJsonAsync<TaskInfo>(OffloadJson.Options))!;
    }

    /// <summary>Waits (on the daemon's wait endpoint, no polling) until the task has ended.</summary>
    public Task<TaskInfo> WaitAsync(long id, CancellationToken cancellationToken = default) =>
        GetAsync<TaskInfo>($"v1/tasks/{id}/wait", cancellationToken);

    public async Task<List<AgentEvent>> EventsAsync(long id)
    {
        var text = await _api.GetStringAsync($"v1/tasks/{id}/events");
        return text.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonSerializer.Deserialize<AgentEvent>(l, OffloadJson.Options)!).ToList();
    }

    public Task<CliRun> OffloadAsync(params string[] args) => RunTimedAsync(Executable, args, Repo, Env);

    public ProcessStartInfo StartInfo(params string[] args) => Info(Executable, args, Repo, Env);

    /// <summary>Runs a process to its end; the time is from start until it has exited.</summary>
    public static async Task<CliRun> RunTimedAsync(string file, IEnumerable<string> args, string workDir, IReadOnlyDictionary<string, string?> env)
    {
        var info = Info(file, args, workDir, env);
        var cpu = ChildCpu.TotalMs();
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(info)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish within 2 minutes");
        }

        var elapsed = clock.Elapsed;
        return new CliRun(process.ExitCode, await stdout, await stderr, elapsed, ChildCpu.TotalMs() - cpu);
    }

    public static ProcessStartInfo Info(string file, IEnumerable<string> args, string workDir, IReadOnlyDictionary<string, string?> env)
    {
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

        foreach (var (key, value) in env)
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

    private static void Run(string file, string[] args, string workDir, IReadOnlyDictionary<string, string?> env)
    {
        var result = RunTimedAsync(file, args, workDir, env).GetAwaiter().GetResult();
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed: {result.Stderr}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (File.Exists(SocketPath))
            {
                await OffloadAsync("daemon", "stop");
            }
        }
        catch (TimeoutException)
        {
        }

        if (DaemonPid > 0 && Procfs.Alive(DaemonPid))
        {
            try
            {
                Process.GetProcessById(DaemonPid).Kill(entireProcessTree: true);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
            }
        }

        _api.Dispose();
        Leftovers.Add(Root);
    }
}

/// <summary>A finished process: its output, wall time, and CPU time (user + system, its own children included).</summary>
public sealed record CliRun(int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed, double CpuMs)
{
    public override string ToString() => $"exit {ExitCode} after {Elapsed.TotalMilliseconds:0} ms\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
}
