using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Offload.Protocol;

/// <summary>The one JSON shape for everything that crosses a boundary: camelCase, no nulls written.</summary>
/// <remarks>
/// The daemon's types have JSON code generated at build time (<see cref="OffloadJsonContext"/>): the daemon is compiled
/// ahead of time (Native AOT) and has no reflection-based JSON. Pass <see cref="Info{T}"/> rather than the options.
/// </remarks>
public static class OffloadJson
{
    public static readonly JsonSerializerOptions Options = Create(indented: false);
    public static readonly JsonSerializerOptions Indented = Create(indented: true);

    /// <summary>The generated metadata of <typeparamref name="T"/> for <see cref="Options"/> (or the given options).</summary>
    public static JsonTypeInfo<T> Info<T>(JsonSerializerOptions? options = null) => (JsonTypeInfo<T>)(options ?? Options).GetTypeInfo(typeof(T));

    private static JsonSerializerOptions Create(bool indented) => new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = indented,
        TypeInfoResolver = Resolver(),
    };

    /// <summary>
    /// The generated metadata, and where reflection is on (a JIT build: tests, tools) reflection for other types.
    /// Under Native AOT the feature switch is off and the reflection branch is removed.
    /// </summary>
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Reached only when reflection-based JSON is enabled, never in an AOT build.")]
    [UnconditionalSuppressMessage("AOT", "IL3050", Justification = "Reached only when reflection-based JSON is enabled, never in an AOT build.")]
    private static IJsonTypeInfoResolver Resolver() => JsonSerializer.IsReflectionEnabledByDefault
        ? JsonTypeInfoResolver.Combine(OffloadJsonContext.Default, new DefaultJsonTypeInfoResolver())
        : OffloadJsonContext.Default;
}

/// <summary>Every type the daemon reads or writes as JSON (the API, the journal, the config, notifications).</summary>
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
[JsonSerializable(typeof(Page<GroupInfo>))]
[JsonSerializable(typeof(TaskDetails))]
[JsonSerializable(typeof(DaemonStatusResponse))]
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
[JsonSerializable(typeof(TaskNotification))]
[JsonSerializable(typeof(UiResponse))]
[JsonSerializable(typeof(Config.OffloadConfig))]
[JsonSerializable(typeof(Config.ConfigReload))]
[JsonSerializable(typeof(Agent.Permissions.PermissionRules.SettingsFile))]
[JsonSerializable(typeof(Dictionary<string, object?>))]
[JsonSerializable(typeof(IDictionary<string, object?>))]
[JsonSerializable(typeof(JsonElement))]
[JsonSerializable(typeof(JsonNode))]
[JsonSerializable(typeof(JsonObject))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(bool))]
[JsonSerializable(typeof(int))]
[JsonSerializable(typeof(long))]
[JsonSerializable(typeof(double))]
[JsonSerializable(typeof(decimal))]
internal sealed partial class OffloadJsonContext : JsonSerializerContext;
