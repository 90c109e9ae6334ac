using System.Text.Json.Serialization;

namespace Offload.Protocol;

/// <summary>
/// The one status vocabulary used by the store, the API, the CLI and notifications.
/// <c>queued → running ⇄ needs_input → succeeded | failed | cancelled | limited</c>.
/// </summary>
[JsonConverter(typeof(JsonStringEnumConverter<OffloadTaskStatus>))]
public enum OffloadTaskStatus
{
    [JsonStringEnumMemberName("queued")] Queued,
    [JsonStringEnumMemberName("running")] Running,
    [JsonStringEnumMemberName("needs_input")] NeedsInput,
    [JsonStringEnumMemberName("succeeded")] Succeeded,
    [JsonStringEnumMemberName("failed")] Failed,
    [JsonStringEnumMemberName("cancelled")] Cancelled,
    [JsonStringEnumMemberName("limited")] Limited,
}

public static class OffloadTaskStatusExtensions
{
    public static bool IsFinal(this OffloadTaskStatus status) =>
        status is OffloadTaskStatus.Succeeded or OffloadTaskStatus.Failed
            or OffloadTaskStatus.Cancelled or OffloadTaskStatus.Limited;

    /// <summary>The wire name, e.g. <c>needs_input</c>.</summary>
    public static string ToWire(this OffloadTaskStatus status) => status switch
    {
        OffloadTaskStatus.Queued => "queued",
        OffloadTaskStatus.Running => "running",
        OffloadTaskStatus.NeedsInput => "needs_input",
        OffloadTaskStatus.Succeeded => "succeeded",
        OffloadTaskStatus.Failed => "failed",
        OffloadTaskStatus.Cancelled => "cancelled",
        OffloadTaskStatus.Limited => "limited",
        _ => throw new ArgumentOutOfRangeException(nameof(status)),
    };

    public static OffloadTaskStatus ParseWire(string value) => value switch
    {
        "queued" => OffloadTaskStatus.Queued,
        "running" => OffloadTaskStatus.Running,
        "needs_input" => OffloadTaskStatus.NeedsInput,
        "succeeded" => OffloadTaskStatus.Succeeded,
        "failed" => OffloadTaskStatus.Failed,
        "cancelled" => OffloadTaskStatus.Cancelled,
        "limited" => OffloadTaskStatus.Limited,
        _ => throw new FormatException($"unknown task status '{value}'"),
    };
}
