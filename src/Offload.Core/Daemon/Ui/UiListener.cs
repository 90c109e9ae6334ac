using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Offload.Agent.Permissions;
using Offload.Config;
using Offload.Protocol;
using Offload.Store;

namespace Offload.Daemon.Ui;

/// <summary>
/// The dashboard's listener: a second Kestrel server in the daemon, on 127.0.0.1 only, opened on the first
/// <c>offload ui</c> (or at start with <c>ui.enabled</c>) and never before, so an idle daemon holds nothing for it. It serves
/// the same API routes as the Unix socket, backed by the daemon's own services (one store, one review service: a merge
/// from the browser is refused exactly as the CLI's), behind <see cref="LoopbackGuard"/>, and the page's files
/// (<see cref="UiAssets"/>). Only the daemon's own controls (status, stop, opening this listener) stay on the socket.
/// </summary>
public sealed partial class UiListener(IServiceProvider daemon, Func<OffloadConfig> config, OffloadPaths paths, ILogger<UiListener> logger) : IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private WebApplication? _app;

    /// <summary>The port it listens on; null while closed.</summary>
    public int? Port { get; private set; }

    /// <summary>Opens the listener if it is closed; its port.</summary>
    public async Task<int> OpenAsync(CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (Port is { } open)
            {
                return open;
            }

            var port = config().Ui.Port;
            var app = Build(port);
            try
            {
                await app.StartAsync(cancellationToken);
            }
            catch (IOException e)
            {
                await app.DisposeAsync();
                throw new OffloadException(ErrorCodes.Conflict, $"the dashboard cannot listen on 127.0.0.1:{port}: {e.Message}",
                    $"free that port, or set another in {paths.ConfigFile} (\"ui\": {{\"port\": 0}} takes any free one), then `offload daemon stop` and `offload ui`");
            }

            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            Port = new Uri(address).Port;
            _app = app;
            Opened(logger, Port.Value);
            return Port.Value;
        }
        finally
        {
            _gate.Release();
        }
    }

    private WebApplication Build(int port)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ContentRootPath = paths.RuntimeDir });
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port));
        builder.Services.AddRoutingCore();
        builder.Logging.ClearProviders();
        DaemonHost.AddApiJson(builder.Services);

        // The daemon's own instances: the container of this app does not own them (it disposes only what it made).
        builder.Services.AddSingleton(daemon.GetRequiredService<ILoggerFactory>());
        builder.Services.AddSingleton(paths);
        builder.Services.AddSingleton(config);
        Forward<ITaskStore>(builder.Services);
        Forward<TimeProvider>(builder.Services);
        Forward<EventHub>(builder.Services);
        Forward<Scheduler>(builder.Services);
        Forward<TaskService>(builder.Services);
        Forward<ReviewService>(builder.Services);
        Forward<RunsService>(builder.Services);
        Forward<PermissionBroker>(builder.Services);
        Forward<DaemonInfo>(builder.Services);
        Forward<UiTokens>(builder.Services);
        builder.Services.AddSingleton(new LoopbackGuard(daemon.GetRequiredService<UiTokens>()));

        var app = builder.Build();
        var stopping = daemon.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        app.Use(async (context, next) =>
        {
            // Live streams end when the daemon stops, as the socket's do.
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, stopping);
            context.RequestAborted = linked.Token;
            await next(context);
        });
        app.Use(app.Services.GetRequiredService<LoopbackGuard>().InvokeAsync);
        Api.Map(app);
        ReviewApi.Map(app);
        PermissionApi.Map(app);
        UiApi.MapStream(app);
        UiAssets.Map(app);
        return app;
    }

    private void Forward<T>(IServiceCollection services) where T : class => services.AddSingleton(daemon.GetRequiredService<T>());

    public async ValueTask DisposeAsync()
    {
        if (_app is { } app)
        {
            await app.StopAsync(CancellationToken.None);
            await app.DisposeAsync();
        }

        _gate.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "the dashboard listens on http://127.0.0.1:{Port}/ (offload ui prints a sign-in link)")]
    private static partial void Opened(ILogger logger, int port);
}
