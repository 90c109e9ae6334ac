using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Offload.Config;
using Offload.Models;
using Offload.Protocol;
using Offload.Store;
using Offload.Workspace;

namespace Offload.Daemon;

/// <summary>The daemon's HTTP/JSON API (camelCase; errors as <see cref="ApiError"/>; live events as SSE).</summary>
public static class Api
{
    public static void Map(WebApplication app)
    {
        app.Use(async (context, next) =>
        {
            try
            {
                await next(context);
            }
            catch (Exception e) when (ToApiError(e) is { } error && !context.Response.HasStarted)
            {
                context.Response.StatusCode = error.Status;
                await context.Response.WriteAsJsonAsync(error.Body, OffloadJson.Info<ApiError>());
            }
        });

        var v1 = app.MapGroup("/v1");
        v1.MapPost("/tasks", async (HttpRequest request, TaskService tasks, CancellationToken ct) =>
        {
            var body = await JsonSerializer.DeserializeAsync(request.Body, OffloadJson.Info<CreateTaskRequest>(), ct)
                       ?? throw new OffloadException(ErrorCodes.BadInput, "the request has no body");
            return Json(await tasks.CreateAsync(body, ct), StatusCodes.Status201Created);
        });
        v1.MapGet("/tasks", async (ITaskStore store, bool? all, long? after, int? limit, string? repo, string? tag, string? grep, long? group, long? series, CancellationToken ct) =>
            Json(await store.ListTasksAsync(new TaskQuery(all ?? false, after, Math.Clamp(limit ?? 100, 1, 1000), repo)
            {
                Tag = string.IsNullOrEmpty(tag) ? null : tag,
                Grep = string.IsNullOrEmpty(grep) ? null : grep,
                Group = group,
                Series = series,
            }, ct)));
        v1.MapPost("/groups", async (HttpRequest request, TaskService tasks, CancellationToken ct) =>
        {
            var body = await JsonSerializer.DeserializeAsync(request.Body, OffloadJson.Info<CreateTaskRequest>(), ct)
                       ?? throw new OffloadException(ErrorCodes.BadInput, "the request has no body");
            return Json(await tasks.CreateGroupAsync(body, ct), StatusCodes.Status201Created);
        });
        v1.MapGet("/groups/{id:long}", async (long id, TaskService tasks, CancellationToken ct) => Json(await tasks.GroupAsync(id, ct)));
        v1.MapGet("/groups/{id:long}/wait", async (long id, string? until, TaskService tasks, EventHub hub, CancellationToken ct) =>
        {
            var group = await tasks.GroupAsync(id, ct);
            var stopAtInput = WaitsForInput(until);
            foreach (var task in group.Tasks)
            {
                await WaitAsync(task.Id, stopAtInput, tasks, hub, ct);
            }

            return Json(await tasks.GroupAsync(id, ct));
        });
        v1.MapGet("/tasks/{id:long}", async (long id, TaskService tasks, CancellationToken ct) => Json(await tasks.ReportAsync(id, ct)));
        v1.MapPost("/tasks/{id:long}/cancel", async (long id, TaskService tasks, CancellationToken ct) => Json(await tasks.CancelAsync(id, ct)));
        v1.MapGet("/tasks/{id:long}/diff", async (long id, TaskService tasks, CancellationToken ct) =>
            Results.Text(await tasks.DiffAsync(id, ct), "text/x-diff", Encoding.UTF8));
        v1.MapGet("/tasks/{id:long}/wait", async (long id, string? until, TaskService tasks, EventHub hub, CancellationToken ct) =>
            Json(await WaitAsync(id, WaitsForInput(until), tasks, hub, ct)));
        v1.MapGet("/tasks/{id:long}/events", StreamEventsAsync);
    }

    /// <summary>The daemon's own controls: on its Unix socket only, not on the dashboard's listener.</summary>
    public static void MapDaemon(WebApplication app)
    {
        var v1 = app.MapGroup("/v1");
        v1.MapGet("/daemon", (DaemonInfo info, Scheduler scheduler, ITaskStore store, Func<Config.OffloadConfig> config) =>
            Json(new DaemonStatusResponse(info.Pid, info.Version, info.Paths.Socket, info.Paths.DataDir, info.StartedAt,
                scheduler.RunningCount, 0, config().MaxParallel, Agent.Tools.Sandbox.IsAvailable)));
        v1.MapPost("/config/reload", (Config.LiveConfig live) => Json(live.Reload()));
        v1.MapPost("/daemon/stop", (IHostApplicationLifetime lifetime) =>
        {
            lifetime.StopApplication();
            return Results.Accepted();
        });
    }

    /// <summary>
    /// <c>until=needs_input</c>: a wait also ends when the task stops to ask (<c>needs_input</c>), since nobody else may
    /// answer (the CLI's default); <c>until=done</c> (the API's default): only its end does (someone else answers meanwhile).
    /// </summary>
    private static bool WaitsForInput(string? until) => until switch
    {
        "needs_input" => true,
        null or "" or "done" => false,
        _ => throw new OffloadException(ErrorCodes.BadInput, $"wait until '{until}' is not known", "until=needs_input or until=done (the default)"),
    };

    /// <summary>Until the task ends, or, with <paramref name="stopAtInput"/>, until it needs input; its state then.</summary>
    private static async Task<TaskInfo> WaitAsync(long id, bool stopAtInput, TaskService tasks, EventHub hub, CancellationToken ct)
    {
        using var subscription = hub.Subscribe(id);
        var task = await tasks.GetAsync(id, ct);
        while (!Reached(task.Status))
        {
            var e = await subscription.Reader.ReadAsync(ct);
            if (e is StatusChanged s && Reached(s.To))
            {
                task = await tasks.GetAsync(id, ct);
            }
        }

        return task;

        bool Reached(OffloadTaskStatus status) => status.IsFinal() || stopAtInput && status == OffloadTaskStatus.NeedsInput;
    }

    /// <summary>
    /// The journal from a sequence number (<c>after</c> or <c>Last-Event-ID</c>), then, with
    /// <c>follow</c>, the live events: subscribe first, read the store, then skip what was already sent.
    /// </summary>
    private static async Task StreamEventsAsync(long id, HttpContext context, TaskService tasks, ITaskStore store, EventHub hub, CancellationToken ct)
    {
        var after = long.TryParse(context.Request.Query["after"], CultureInfo.InvariantCulture, out var a) ? a : 0;
        if (long.TryParse(context.Request.Headers["Last-Event-ID"], CultureInfo.InvariantCulture, out var lastId))
        {
            after = Math.Max(after, lastId);
        }

        var follow = context.Request.Query["follow"] == "1";
        var sse = follow || context.Request.Headers.Accept.ToString().Contains("text/event-stream", StringComparison.Ordinal);
        using var subscription = follow ? hub.Subscribe(id) : null;
        var task = await tasks.GetAsync(id, ct);

        context.Response.ContentType = sse ? "text/event-stream" : "application/x-ndjson";
        context.Response.Headers.CacheControl = "no-cache";
        var last = after;
        var done = task.Status.IsFinal();
        foreach (var e in await store.ReadEventsAsync(id, after, int.MaxValue, ct))
        {
            await WriteEventAsync(context.Response, e, sse, ct);
            last = e.Seq;
        }

        await context.Response.Body.FlushAsync(ct);
        if (subscription is null || (done && context.Request.Query["untilDone"] == "1"))
        {
            return;
        }

        try
        {
            await foreach (var e in subscription.Reader.ReadAllAsync(ct))
            {
                if (e.Seq <= last)
                {
                    continue;
                }

                if (e.Seq > last + 1)
                {
                    // something was published before we subscribed and after we read: fill the gap from the store
                    foreach (var missed in await store.ReadEventsAsync(id, last, (int)(e.Seq - last - 1), ct))
                    {
                        await WriteEventAsync(context.Response, missed, sse, ct);
                    }
                }

                await WriteEventAsync(context.Response, e, sse, ct);
                last = e.Seq;
                await context.Response.Body.FlushAsync(ct);
                if (e is StatusChanged s && s.To.IsFinal() && context.Request.Query["untilDone"] == "1")
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private static async Task WriteEventAsync(HttpResponse response, AgentEvent e, bool sse, CancellationToken ct)
    {
        var json = JsonSerializer.Serialize(e, OffloadJson.Info<AgentEvent>());
        var text = sse
            ? $"id: {e.Seq}\nevent: {json.AsSpan(9, json.IndexOf('"', 9) - 9)}\ndata: {json}\n\n"
            : json + "\n";
        await response.WriteAsync(text, ct);
    }

    private static IResult Json<T>(T value, int status = StatusCodes.Status200OK) =>
        Results.Json(value, OffloadJson.Info<T>(), statusCode: status);

    private static (int Status, ApiError Body)? ToApiError(Exception e) => e switch
    {
        OffloadException o => (o.Code switch
        {
            ErrorCodes.NotFound => 404,
            ErrorCodes.Conflict => 409,
            ErrorCodes.Internal => 500,
            _ => 400,
        }, o.ToApiError()),
        ModelConfigException m => (400, new ApiError(ErrorCodes.NoModel, m.Message)),
        ConfigException c => (400, new ApiError(ErrorCodes.BadInput, c.Message, c.Hint)),
        DiskFullException d => (507, new ApiError(ErrorCodes.DiskFull, $"{d.Message}: the daemon could not store this; nothing changed", d.Hint)),
        StoreWriteException s => (500, new ApiError(ErrorCodes.Internal, $"{s.Message}; nothing changed", "run the command again; the daemon's log says more")),
        WorkspaceException w => (409, new ApiError(w.Code, w.Message)),
        JsonException j => (400, new ApiError(ErrorCodes.BadInput, $"the request is not valid JSON: {j.Message}")),
        _ => null,
    };
}
