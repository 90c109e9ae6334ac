namespace Offload.Protocol;

/// <summary><c>POST /v1/tasks/{id}/approve</c>: <see cref="Always"/> adds an allow rule for the rest of the task.</summary>
public sealed record ApproveRequest(bool Always = false);

/// <summary><c>POST /v1/tasks/{id}/deny</c>: the <see cref="Reason"/> is what the model is told.</summary>
public sealed record DenyRequest(string? Reason = null);

/// <summary>The question that was answered and how; <see cref="Rule"/> is the allow rule <c>--always</c> added.</summary>
public sealed record PermissionAnswerResponse(long TaskId, string RequestId, string Tool, System.Text.Json.JsonElement Input, bool Allowed, string? Reason, string? Rule);

/// <summary><c>GET /v1/tasks/{id}/permission</c>: the question a task waits on, null when it waits on none.</summary>
public sealed record PendingPermissionResponse(PermissionRequested? Pending);
