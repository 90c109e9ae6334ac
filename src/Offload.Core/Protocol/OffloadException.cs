namespace Offload.Protocol;

/// <summary>
/// An error the user can act on: what happened and why (<see cref="Exception.Message"/>), and
/// what to type next (<see cref="Hint"/>). <see cref="Code"/> is stable; the CLI maps it to an
/// exit code and the API to an HTTP status.
/// </summary>
public sealed class OffloadException(string code, string message, string? hint = null) : Exception(message)
{
    public string Code { get; } = code;
    public string? Hint { get; } = hint;

    public ApiError ToApiError() => new(Code, Message, Hint);

    public static OffloadException NotFound(long id) =>
        new(ErrorCodes.NotFound, $"there is no task {id}", "`offload ls --all` lists the tasks there are");
}

/// <summary>The stable error codes of the API.</summary>
public static class ErrorCodes
{
    public const string BadInput = "bad_input";
    public const string NotFound = "not_found";
    public const string Conflict = "conflict";
    public const string NoModel = "no_model";
    public const string Repository = "repository";
    public const string Daemon = "daemon";
    public const string DiskFull = "disk_full";
    public const string Internal = "internal";

    /// <summary>The dashboard's listener: no session (401).</summary>
    public const string Unauthorized = "unauthorized";

    /// <summary>The dashboard's listener: wrong Host (421) or a request from another origin (403).</summary>
    public const string Forbidden = "forbidden";
}
