using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Offload.Cli.Commands;
using Offload.Protocol;

namespace Offload.Cli;

/// <summary>
/// The CLI's JSON, generated at build time (the published CLI is Native AOT: no reflection). Same shape as
/// <see cref="OffloadJson"/>: camelCase, no nulls written. A type the CLI reads, writes or prints goes in this list.
/// </summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AgentEvent))]
[JsonSerializable(typeof(TaskInfo))]
[JsonSerializable(typeof(TaskInfo[]))]
[JsonSerializable(typeof(Page<TaskInfo>))]
[JsonSerializable(typeof(Page<CheckpointInfo>))]
[JsonSerializable(typeof(TaskReport))]
[JsonSerializable(typeof(GroupInfo))]
[JsonSerializable(typeof(CompareResponse))]
[JsonSerializable(typeof(StatsResponse))]
[JsonSerializable(typeof(GroupInfo[]))]
[JsonSerializable(typeof(Page<GroupInfo>))]
[JsonSerializable(typeof(TaskDetails))]
[JsonSerializable(typeof(DaemonStatusResponse))]
[JsonSerializable(typeof(UiResponse))]
[JsonSerializable(typeof(Config.ConfigReload))]
[JsonSerializable(typeof(ApiError))]
[JsonSerializable(typeof(CreateTaskRequest))]
[JsonSerializable(typeof(MergeRequest))]
[JsonSerializable(typeof(MergeResponse))]
[JsonSerializable(typeof(DiscardRequest))]
[JsonSerializable(typeof(DiscardResponse))]
[JsonSerializable(typeof(GcResponse))]
[JsonSerializable(typeof(ReplyRequest))]
[JsonSerializable(typeof(RetryRequest))]
[JsonSerializable(typeof(RewindRequest))]
[JsonSerializable(typeof(RewindResponse))]
[JsonSerializable(typeof(ApproveRequest))]
[JsonSerializable(typeof(DenyRequest))]
[JsonSerializable(typeof(PermissionAnswerResponse))]
[JsonSerializable(typeof(PendingPermissionResponse))]
[JsonSerializable(typeof(IReadOnlyList<CheckpointInfo>))]
[JsonSerializable(typeof(IReadOnlyList<TaskInfo>))]
[JsonSerializable(typeof(IReadOnlyList<ChangedFile>))]
[JsonSerializable(typeof(IReadOnlyList<CommandRun>))]
[JsonSerializable(typeof(IReadOnlyList<AttemptInfo>))]
[JsonSerializable(typeof(IReadOnlyList<MergeRecord>))]
[JsonSerializable(typeof(IReadOnlyList<WorktreeRestoreRecord>))]
[JsonSerializable(typeof(IReadOnlyList<CompactionRecord>))]
[JsonSerializable(typeof(IReadOnlyList<PlanItem>))]
[JsonSerializable(typeof(IReadOnlyList<SubagentInfo>))]
[JsonSerializable(typeof(IReadOnlyList<CheckRan>))]
[JsonSerializable(typeof(IReadOnlyList<AllowedPrompt>))]
[JsonSerializable(typeof(PermissionRequested))]
[JsonSerializable(typeof(System.Text.Json.Nodes.JsonObject))]
[JsonSerializable(typeof(DoctorReport))]
[JsonSerializable(typeof(DaemonStatusJson))]
internal sealed partial class CliJsonContext : JsonSerializerContext;

internal static class CliJson
{
    public static readonly JsonSerializerOptions Options = new(CliJsonContext.Default.Options);

    public static readonly JsonSerializerOptions Indented = new(CliJsonContext.Default.Options) { WriteIndented = true };

    public static JsonTypeInfo<T> Info<T>(JsonSerializerOptions? options = null) => (JsonTypeInfo<T>)(options ?? Options).GetTypeInfo(typeof(T));

    public static JsonTypeInfo Info(Type type) => Options.GetTypeInfo(type);
}
