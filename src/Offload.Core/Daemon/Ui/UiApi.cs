using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Offload.Protocol;
using Offload.Store;

namespace Offload.Daemon.Ui;

/// <summary>The dashboard's endpoints: opening the listener (Unix socket only) and the live board (both listeners).</summary>
public static class UiApi
{
    /// <summary><c>POST /v1/ui</c>: opens the loopback listener if it is closed and hands out a fresh sign-in link.</summary>
    public static void MapOpen(WebApplication app) =>
        app.MapPost("/v1/ui", async (UiListener listener, UiTokens tokens, CancellationToken ct) =>
        {
            var port = await listener.OpenAsync(ct);
            var (token, expires) = tokens.IssueSignIn();
            return Results.Json(new UiResponse($"http://127.0.0.1:{port}/?token={token}", port, expires), OffloadJson.Info<UiResponse>());
        });

    /// <summary>
    /// <c>GET /v1/tasks/stream</c>: the board, live. A <c>snapshot</c> event with the newest tasks (<c>limit</c>, default 1000,
    /// discarded ones left out, as <c>ls</c>), then a <c>task</c> event with a task as it now is each time its journal grows.
    /// It subscribes before it reads, so nothing is missed; changes that arrive together are sent once per task. A
    /// reconnecting client gets a new snapshot, so it needs no <c>Last-Event-ID</c>.
    /// </summary>
    public static void MapStream(WebApplication app) =>
        app.MapGet("/v1/tasks/stream", async (int? limit, HttpContext context, ITaskStore store, EventHub hub, CancellationToken ct) =>
        {
            context.Response.ContentType = "text/event-stream";
            context.Response.Headers.CacheControl = "no-cache";
            try
            {
                await SseFormatter.WriteAsync(BoardAsync(Math.Clamp(limit ?? 1000, 1, 5000), store, hub, ct), context.Response.Body, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
            }
        });

    private static async IAsyncEnumerable<SseItem<string>> BoardAsync(int limit, ITaskStore store, EventHub hub, [EnumeratorCancellation] CancellationToken ct)
    {
        using var subscription = hub.Subscribe(null);
        var page = await store.ListTasksAsync(new TaskQuery(Limit: limit), ct);
        yield return new SseItem<string>(JsonSerializer.Serialize(page, OffloadJson.Info<Page<TaskInfo>>()), "snapshot");
        var changed = new HashSet<long>();
        while (await subscription.Reader.WaitToReadAsync(ct))
        {
            while (subscription.Reader.TryRead(out var e))
            {
                changed.Add(e.TaskId);
            }

            foreach (var id in changed)
            {
                if (await store.GetTaskAsync(id, ct) is { } task)
                {
                    yield return new SseItem<string>(JsonSerializer.Serialize(task, OffloadJson.Info<TaskInfo>()), "task");
                }
            }

            changed.Clear();
        }
    }
}
