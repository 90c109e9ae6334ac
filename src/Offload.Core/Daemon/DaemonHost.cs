using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Offload.Agent;
using Offload.Agent.Tools;
using Offload.Config;
using Offload.Engines;
using Offload.Protocol;
using Offload.Store;
using Offload.Workspace;

namespace Offload.Daemon;

/// <summary>
/// The daemon process: one lock, one store, the API on a Unix socket only its owner can open,
/// the scheduler and its runners. <c>offload daemon run</c> calls <see cref="RunAsync"/>.
/// </summary>
public static partial class DaemonHost
{
    public static string Version => typeof(DaemonHost).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    private static void LogReload(ILogger logger, ConfigReload reload)
    {
        if (reload.Problem is { } problem)
        {
            LogConfigRefused(logger, problem);
        }
        else
        {
            LogConfigApplied(logger, reload.NeedsRestart.Count == 0 ? "" : $"; {string.Join(", ", reload.NeedsRestart)} waits for `offload daemon stop`");
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "the config file changed: applied{Rest}")]
    private static partial void LogConfigApplied(ILogger logger, string rest);

    [LoggerMessage(Level = LogLevel.Warning, Message = "the config file changed but does not load, so the daemon goes on with the settings it had: {Problem}")]
    private static partial void LogConfigRefused(ILogger logger, string problem);

    public static async Task<int> RunAsync(OffloadPaths paths, Func<string, string?> getEnv, CancellationToken cancellationToken = default)
    {
        var config = OffloadConfig.Load(paths.ConfigFile); // first: a config that does not parse changes nothing
        using var daemonLock = DaemonLock.Acquire(paths);
        using var store = SqliteTaskStore.Open(paths.Database);
        Directory.CreateDirectory(paths.WorktreesDir);
        Directory.CreateDirectory(paths.OutputsDir);
        if (File.Exists(paths.Socket))
        {
            File.Delete(paths.Socket); // we hold the lock, so no live daemon owns it
        }

        // The empty builder: no configuration files, environment or command-line sources (the daemon has its own
        // config), no HTTPS, host filtering or forwarded headers; only Kestrel's core and routing are added. Nothing
        // watches files (the daemon runs from `/`: a reloading host set a recursive watcher on the whole disk), and
        // fewer assemblies are loaded (docs/benchmarks.md).
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ContentRootPath = paths.RuntimeDir });
        builder.WebHost.UseKestrelCore();
        builder.Services.AddRoutingCore();
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss ");
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(k => k.ListenUnixSocket(paths.Socket, OwnerOnlyConnections.Use));
        AddApiJson(builder.Services);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));

        var redactor = Redaction.SecretRedactor.From(Environment.GetEnvironmentVariables(), config);
        store.BeforeAppend = redactor.Redact;
        builder.Services.AddSingleton(redactor);
        using var telemetry = Telemetry.OffloadTelemetry.Start(config.Telemetry, getEnv, redactor, out var telemetryProblem);
        var models = new ModelGateway(config.Models, getEnv) { Telemetry = telemetry };
        if (telemetry is not null)
        {
            builder.Services.AddSingleton(telemetry);
        }

        using var live = new LiveConfig(paths.ConfigFile, config);
        Func<OffloadConfig> currentConfig = () => live.Current;
        builder.Services.AddSingleton(live);
        builder.Services.AddSingleton(paths);
        builder.Services.AddSingleton<ITaskStore>(store);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(currentConfig);
        builder.Services.AddSingleton(models);
        builder.Services.AddSingleton<EventHub>();
        builder.Services.AddSingleton<GitWorkspace>();
        builder.Services.AddSingleton(ToolRegistry.CreateDefault());
        builder.Services.AddSingleton<PermissionBroker>();
        builder.Services.AddSingleton(sp => new Agent.Permissions.PermissionGate(sp.GetRequiredService<PermissionBroker>(), getEnv));
        builder.Services.AddSingleton<IEngine, AgentLoop>();
        builder.Services.AddSingleton<Engines.Claude.ClaudePermissionServer>();
        builder.Services.AddSingleton<IEngine>(sp => ActivatorUtilities.CreateInstance<Engines.Claude.ClaudeEngine>(sp, getEnv));
        builder.Services.AddSingleton<IEngine>(sp => ActivatorUtilities.CreateInstance<Engines.Codex.CodexEngine>(sp, getEnv));
        builder.Services.AddSingleton<Runner>();
        builder.Services.AddSingleton<Scheduler>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Scheduler>());
        builder.Services.AddSingleton<TaskService>();
        builder.Services.AddSingleton<ReviewService>();
        builder.Services.AddSingleton<RunsService>();
        builder.Services.AddHostedService<Notifier>();
        builder.Services.AddSingleton<Ui.UiTokens>();
        builder.Services.AddSingleton<Ui.UiListener>();
        builder.Services.AddSingleton(new DaemonInfo(Environment.ProcessId, Version, paths, DateTimeOffset.UtcNow));

        await using var app = builder.Build();
        if (telemetryProblem is not null)
        {
            app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Offload.Telemetry").LogWarning("{Problem}", telemetryProblem);
        }

        // A stop is graceful from its first moment: runs head for a safe point at once, open streams (logs -f, wait)
        // end instead of the web host waiting for them while the runs go on, and the socket goes, so that clients
        // start the next daemon (it waits for this one's lock) rather than talk to one on its way out.
        var scheduler = app.Services.GetRequiredService<Scheduler>();
        live.Changed += (_, next) =>
        {
            models.Settings = next.Models; // providers, prices, retries: the next model call uses them
            redactor.AddSecrets(Redaction.SecretRedactor.From(Environment.GetEnvironmentVariables(), next));
            scheduler.Wake(); // a higher maxParallel starts queued tasks now
        };
        var configLog = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Offload.Config");
        live.Watch(reload => LogReload(configLog, reload));
        app.Lifetime.ApplicationStopping.Register(() =>
        {
            scheduler.BeginStop();
            File.Delete(paths.Socket);
        });
        app.Use(async (context, next) =>
        {
            var aborted = context.RequestAborted;
            using var stopping = CancellationTokenSource.CreateLinkedTokenSource(aborted, app.Lifetime.ApplicationStopping);
            context.RequestAborted = stopping.Token;
            context.Response.OnStarting(() =>
            {
                if (app.Lifetime.ApplicationStopping.IsCancellationRequested)
                {
                    context.Response.Headers.Connection = "close"; // no client may keep talking to a daemon on its way out
                }

                return Task.CompletedTask;
            });
            try
            {
                await next(context);
            }
            catch (OperationCanceledException) when (!aborted.IsCancellationRequested && !context.Response.HasStarted)
            {
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable; // the CLI starts a new daemon and asks again
                await context.Response.WriteAsJsonAsync(
                    new ApiError(ErrorCodes.Daemon, "the daemon is stopping", "run the command again; it starts a new daemon"), OffloadJson.Info<ApiError>());
            }
        });
        Api.Map(app);
        Api.MapDaemon(app);
        ReviewApi.Map(app);
        PermissionApi.Map(app);
        Ui.UiApi.MapOpen(app);
        Ui.UiApi.MapStream(app);
        await app.StartAsync(cancellationToken);
        File.SetUnixFileMode(paths.Socket, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var ui = app.Services.GetRequiredService<Ui.UiListener>();
        if (config.Ui.Enabled)
        {
            try
            {
                await ui.OpenAsync(cancellationToken);
            }
            catch (OffloadException e)
            {
                // The CLI's work does not depend on the dashboard: the daemon goes on, and `offload ui` says the same.
                app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Offload.Ui").LogWarning("{Problem} ({Hint})", e.Message, e.Hint);
            }
        }

        await app.WaitForShutdownAsync(cancellationToken);
        await ui.DisposeAsync();
        await models.DisposeAsync();
        return 0;
    }

    /// <summary>The API's JSON: the generated metadata (Native AOT), nulls left out; the socket's and the dashboard's listener alike.</summary>
    internal static void AddApiJson(IServiceCollection services) =>
        services.Configure<Microsoft.AspNetCore.Http.Json.JsonOptions>(o =>
        {
            o.SerializerOptions.DefaultIgnoreCondition = OffloadJson.Options.DefaultIgnoreCondition;
            o.SerializerOptions.TypeInfoResolverChain.Insert(0, OffloadJsonContext.Default);
        });
}

public sealed record DaemonInfo(int Pid, string Version, OffloadPaths Paths, DateTimeOffset StartedAt);

/// <summary>
/// One daemon per <c>OFFLOAD_HOME</c>: an exclusive lock (flock) on a file in the runtime
/// directory, released by the kernel when the process dies, so a stale file never blocks a start.
/// </summary>
public sealed class DaemonLock : IDisposable
{
    private readonly FileStream _file;

    private DaemonLock(FileStream file) => _file = file;

    public static DaemonLock Acquire(OffloadPaths paths)
    {
        try
        {
            Directory.CreateDirectory(paths.RuntimeDir);
            File.SetUnixFileMode(paths.RuntimeDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            Directory.CreateDirectory(paths.DataDir);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new OffloadException(ErrorCodes.Daemon, $"cannot create Offload's folders {paths.RuntimeDir} and {paths.DataDir}: {e.Message}",
                "make the folder writable, or point OFFLOAD_HOME (or XDG_RUNTIME_DIR / XDG_DATA_HOME) at one that is");
        }

        FileStream file;
        try
        {
            file = new FileStream(paths.LockFile, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (DiskFullException.Find(e, paths.RuntimeDir) is { } full)
        {
            throw new OffloadException(ErrorCodes.DiskFull, full.Message, full.Hint);
        }
        catch (IOException)
        {
            // The holder's pid is in the file, but .NET cannot read it: every read takes a shared flock, which the holder's excludes.
            throw new OffloadException(ErrorCodes.Daemon, $"another Offload daemon is already running for {paths.RuntimeDir} (its pid is in {paths.LockFile})",
                "`offload daemon status` shows it; `offload daemon stop` stops it");
        }
        catch (UnauthorizedAccessException e)
        {
            throw new OffloadException(ErrorCodes.Daemon, $"cannot write {paths.LockFile}: {e.Message}",
                "make the folder writable, or point OFFLOAD_HOME at one that is");
        }

        try
        {
            file.SetLength(0);
            file.Write(System.Text.Encoding.ASCII.GetBytes($"{Environment.ProcessId}\n"));
            file.Flush();
            return new DaemonLock(file);
        }
        catch (IOException e)
        {
            file.Dispose();
            throw DiskFullException.Find(e, paths.RuntimeDir) is { } full
                ? new OffloadException(ErrorCodes.DiskFull, full.Message, full.Hint)
                : new OffloadException(ErrorCodes.Daemon, $"cannot write {paths.LockFile}: {e.Message}", "make the folder writable, or point OFFLOAD_HOME at one that is");
        }
    }

    public void Dispose() => _file.Dispose();
}
