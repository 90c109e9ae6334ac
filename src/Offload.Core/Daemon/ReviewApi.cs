using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Offload.Protocol;

namespace Offload.Daemon;

/// <summary>
/// The endpoints of the follow-up verbs. The ones that change a repository run to the end even when
/// the client goes away (a half-done merge is worse than a late answer), so they ignore the request's token.
/// </summary>
public static class ReviewApi
{
    public static void Map(WebApplication app)
    {
        var v1 = app.MapGroup("/v1");
        v1.MapGet("/tasks/{id:long}/details", async (long id, ReviewService review, CancellationToken ct) =>
            Json(await review.DetailsAsync(id, ct)));
        v1.MapPost("/tasks/{id:long}/merge", async (long id, HttpRequest request, ReviewService review, CancellationToken ct) =>
            Json(await review.MergeAsync(id, (await ReadAsync<MergeRequest>(request, ct) ?? new MergeRequest()).Squash, CancellationToken.None)));
        v1.MapPost("/tasks/{id:long}/apply", async (long id, ReviewService review) =>
            Json(await review.ApplyAsync(id, CancellationToken.None)));
        v1.MapPost("/tasks/{id:long}/discard", async (long id, HttpRequest request, ReviewService review, CancellationToken ct) =>
            Json(await review.DiscardAsync(id, (await ReadAsync<DiscardRequest>(request, ct) ?? new DiscardRequest()).Force, CancellationToken.None)));
        v1.MapPost("/gc", async (ReviewService review) => Json(await review.GcAsync(CancellationToken.None)));
        v1.MapPost("/tasks/{id:long}/reply", async (long id, HttpRequest request, ReviewService review, CancellationToken ct) =>
            Json(await review.ReplyAsync(id, await ReadAsync<ReplyRequest>(request, ct)
                ?? throw new OffloadException(ErrorCodes.BadInput, "the request has no body"), CancellationToken.None)));
        v1.MapPost("/tasks/{id:long}/retry", async (long id, HttpRequest request, ReviewService review, CancellationToken ct) =>
            Json(await review.RetryAsync(id, await ReadAsync<RetryRequest>(request, ct) ?? new RetryRequest(), CancellationToken.None)));
        v1.MapGet("/tasks/{id:long}/checkpoints", async (long id, ReviewService review, CancellationToken ct) =>
            Json(new Page<CheckpointInfo>(await review.CheckpointsAsync(id, ct), null)));
        v1.MapGet("/compare", async (string? ids, long? group, string? tag, RunsService runs, CancellationToken ct) =>
            Json(await runs.CompareAsync(ParseIds(ids), group, string.IsNullOrEmpty(tag) ? null : tag, ct)));
        v1.MapGet("/compare/diff", async (long a, long b, RunsService runs, CancellationToken ct) =>
            Results.Text(await runs.DiffBetweenAsync(a, b, ct), "text/x-diff", System.Text.Encoding.UTF8));
        v1.MapGet("/stats", async (string? since, string? by, string? tag, string? repo, int? tz, RunsService runs, CancellationToken ct) =>
            Json(await runs.StatsAsync(
                string.IsNullOrEmpty(since) ? null : DateTimeOffset.TryParse(since, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var at) ? at
                    : throw new OffloadException(ErrorCodes.BadInput, $"since={since} is not a time"),
                string.IsNullOrEmpty(by) ? null : by, string.IsNullOrEmpty(tag) ? null : tag, string.IsNullOrEmpty(repo) ? null : repo,
                TimeSpan.FromMinutes(Math.Clamp(tz ?? 0, -18 * 60, 18 * 60)), ct)));
        v1.MapPost("/tasks/{id:long}/rewind", async (long id, HttpRequest request, ReviewService review, CancellationToken ct) =>
            Json(await review.RewindAsync(id, (await ReadAsync<RewindRequest>(request, ct)
                ?? throw new OffloadException(ErrorCodes.BadInput, "the request has no body")).Turn, CancellationToken.None)));
    }

    private static long[] ParseIds(string? ids) =>
        [.. (ids ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(i =>
            long.TryParse(i, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id) ? id
                : throw new OffloadException(ErrorCodes.BadInput, $"'{i}' is not a task number"))];

    private static async Task<T?> ReadAsync<T>(HttpRequest request, CancellationToken ct) where T : class =>
        request.ContentLength == 0 ? null : await JsonSerializer.DeserializeAsync(request.Body, OffloadJson.Info<T>(), ct);

    private static IResult Json<T>(T value) => Results.Json(value, OffloadJson.Info<T>());
}
