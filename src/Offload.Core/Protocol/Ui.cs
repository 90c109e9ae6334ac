namespace Offload.Protocol;

/// <summary>
/// <c>POST /v1/ui</c> (the Unix socket only): the dashboard's listener is open at <paramref name="Port"/> on 127.0.0.1, and
/// <paramref name="Url"/> carries a fresh one-time token (<c>?token=…</c>) that signs a browser in.
/// </summary>
public sealed record UiResponse(string Url, int Port, DateTimeOffset TokenExpiresAt);
