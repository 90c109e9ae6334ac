using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Offload.Agent.Permissions;
using Offload.Protocol;

namespace Offload.Daemon;

/// <summary>Answers to parked tasks: <c>approve</c>, <c>deny</c>, and the open question itself.</summary>
public static class PermissionApi
{
    public static void Map(WebApplication app)
    {
        var v1 = app.MapGroup("/v1");
        v1.MapGet("/tasks/{id:long}/permission", async (long id, PermissionBroker broker, CancellationToken ct) =>
            Results.Json(new PendingPermissionResponse(await broker.PendingAsync(id, ct)), OffloadJson.Info<PendingPermissionResponse>()));
        v1.MapPost("/tasks/{id:long}/approve", async (long id, HttpRequest request, PermissionBroker broker, CancellationToken ct) =>
        {
            var body = await ReadAsync<ApproveRequest>(request, ct) ?? new ApproveRequest();
            var (question, answer) = await broker.AnswerAsync(id, true, null, body.Always, ct);
            var rule = answer.Always ? PermissionRule.AlwaysAllowFor(question.Tool, question.Input).ToString() : null;
            return Results.Json(new PermissionAnswerResponse(id, question.RequestId, question.Tool, question.Input, true, null, rule), OffloadJson.Info<PermissionAnswerResponse>());
        });
        v1.MapPost("/tasks/{id:long}/deny", async (long id, HttpRequest request, PermissionBroker broker, CancellationToken ct) =>
        {
            var body = await ReadAsync<DenyRequest>(request, ct) ?? new DenyRequest();
            var (question, answer) = await broker.AnswerAsync(id, false, body.Reason, false, ct);
            return Results.Json(new PermissionAnswerResponse(id, question.RequestId, question.Tool, question.Input, false, answer.Reason, null), OffloadJson.Info<PermissionAnswerResponse>());
        });
    }

    private static async Task<T?> ReadAsync<T>(HttpRequest request, CancellationToken ct) =>
        request.ContentLength is 0 || (request.ContentLength is null && !request.HasJsonContentType())
            ? default
            : await JsonSerializer.DeserializeAsync(request.Body, OffloadJson.Info<T>(), ct);
}
