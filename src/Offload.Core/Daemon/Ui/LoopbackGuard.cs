using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Offload.Protocol;

namespace Offload.Daemon.Ui;

/// <summary>
/// Who may use the daemon's loopback listener, decided before any route runs, in this order:
/// <list type="number">
/// <item>the Host header must name this listener (<c>127.0.0.1:PORT</c> or <c>localhost:PORT</c>), else 421: a page of
/// another site whose name was rebound to 127.0.0.1 (DNS rebinding) sends its own name;</item>
/// <item>a state-changing request (anything but GET, HEAD, OPTIONS) must come from this listener's own origin (its
/// <c>Origin</c>, or when a browser sends none, its <c>Sec-Fetch-Site</c>), else 403: the session cookie goes with
/// requests from every port of 127.0.0.1 (a cookie is not scoped to a port, and such a page is "same site"), so
/// SameSite alone does not stop another local page from posting (CSRF);</item>
/// <item>the request must carry a session: the HttpOnly SameSite=Strict cookie set by the first visit with a one-time
/// token from <c>offload ui</c>, or <c>Authorization: Bearer</c> with a session token (non-browser clients), else 401.</item>
/// </list>
/// Every answer forbids framing (clickjacking), sniffing, and referrers (the sign-in URL carries a token).
/// Reusable by any route set served on the listener: <c>app.Use(guard.InvokeAsync)</c> first.
/// </summary>
public sealed class LoopbackGuard(UiTokens tokens)
{
    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var request = context.Request;
        var port = context.Connection.LocalPort;
        var headers = context.Response.Headers;
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        headers.XFrameOptions = "DENY";
        headers.ContentSecurityPolicy = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

        if (!IsOwnHost(request.Host.Value ?? "", port))
        {
            await RefuseAsync(context, StatusCodes.Status421MisdirectedRequest,
                $"this listener answers only as 127.0.0.1:{port} or localhost:{port}, not as '{request.Host.Value}'",
                "open the address `offload ui` prints");
            return;
        }

        if (!HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method) && !HttpMethods.IsOptions(request.Method)
            && CrossOrigin(request, port) is { } from)
        {
            await RefuseAsync(context, StatusCodes.Status403Forbidden,
                $"a {request.Method} from {from} was refused: only the dashboard's own pages may change anything",
                "use the dashboard at the address `offload ui` prints, or the offload CLI");
            return;
        }

        var cookieName = CookieName(port);
        if (request.Query["token"].ToString() is { Length: > 0 } login && HttpMethods.IsGet(request.Method))
        {
            var session = tokens.SignIn(login);
            if (session is null && !tokens.IsSession(request.Cookies[cookieName]))
            {
                await RefuseAsync(context, StatusCodes.Status401Unauthorized,
                    "this sign-in link was used already or has expired (each link signs in once, within 15 minutes)",
                    "run `offload ui` for a fresh one");
                return;
            }

            if (session is not null)
            {
                context.Response.Cookies.Append(cookieName, session, new CookieOptions
                {
                    HttpOnly = true,
                    SameSite = SameSiteMode.Strict,
                    Path = "/",
                    IsEssential = true,
                });
            }

            // The token leaves the address bar (and the history) at once.
            var rest = string.Join('&', request.Query.Where(q => q.Key != "token")
                .SelectMany(q => q.Value.Select(v => Uri.EscapeDataString(q.Key) + "=" + Uri.EscapeDataString(v ?? ""))));
            context.Response.StatusCode = StatusCodes.Status303SeeOther;
            headers.Location = request.PathBase + request.Path + (rest.Length > 0 ? "?" + rest : "");
            headers.CacheControl = "no-store";
            return;
        }

        var bearer = request.Headers.Authorization.ToString();
        var presented = bearer.StartsWith("Bearer ", StringComparison.Ordinal) ? bearer["Bearer ".Length..].Trim() : request.Cookies[cookieName];
        if (!tokens.IsSession(presented))
        {
            await RefuseAsync(context, StatusCodes.Status401Unauthorized,
                "this dashboard needs a sign-in: open it with the link `offload ui` prints (the link signs this browser in)",
                "run `offload ui`");
            return;
        }

        await next(context);
    }

    /// <summary>The session cookie's name: one per port, so that two daemons (two OFFLOAD_HOMEs) in one browser keep theirs apart.</summary>
    public static string CookieName(int port) => "offload-" + port.ToString(CultureInfo.InvariantCulture);

    private static bool IsOwnHost(string host, int port)
    {
        var p = port.ToString(CultureInfo.InvariantCulture);
        return host == "127.0.0.1:" + p || host == "localhost:" + p || (port == 80 && host is "127.0.0.1" or "localhost");
    }

    /// <summary>Where a state-changing request came from when that is not this listener; null when it is, or no browser said.</summary>
    private static string? CrossOrigin(HttpRequest request, int port)
    {
        var origin = request.Headers.Origin.ToString();
        if (origin.Length > 0)
        {
            var p = port.ToString(CultureInfo.InvariantCulture);
            return origin == "http://127.0.0.1:" + p || origin == "http://localhost:" + p ? null : origin;
        }

        // A browser that sends no Origin still says where a request came from; a client that is not a browser says neither.
        var site = request.Headers["Sec-Fetch-Site"].ToString();
        return site.Length == 0 || site is "same-origin" or "none" ? null : $"a {site} page";
    }

    /// <summary>The API's error shape for /v1/ calls; for a page a browser opened, the same words as plain text.</summary>
    private static Task RefuseAsync(HttpContext context, int status, string message, string hint)
    {
        context.Response.StatusCode = status;
        context.Response.Headers.CacheControl = "no-store";
        if (!context.Request.Path.StartsWithSegments("/v1", StringComparison.Ordinal))
        {
            context.Response.ContentType = "text/plain; charset=utf-8";
            return context.Response.WriteAsync($"offload: {message}\n  next: {hint}\n");
        }

        return context.Response.WriteAsJsonAsync(new ApiError(status switch
        {
            StatusCodes.Status401Unauthorized => ErrorCodes.Unauthorized,
            _ => ErrorCodes.Forbidden,
        }, message, hint), OffloadJson.Info<ApiError>());
    }
}

/// <summary>
/// The listener's credentials, in memory only (a restarted daemon forgets them: `offload ui` signs in again). A sign-in
/// token is handed out by <c>offload ui</c> over the owner-only Unix socket, works once, for 15 minutes, and becomes a
/// session; a session lasts as long as the daemon. Tokens are kept as SHA-256 hashes.
/// </summary>
public sealed class UiTokens(TimeProvider time)
{
    public static readonly TimeSpan SignInLifetime = TimeSpan.FromMinutes(15);

    private readonly ConcurrentDictionary<string, DateTimeOffset> _signIns = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _sessions = new(StringComparer.Ordinal);

    /// <summary>A fresh one-time sign-in token and when it expires.</summary>
    public (string Token, DateTimeOffset ExpiresAt) IssueSignIn()
    {
        var token = NewToken();
        var expires = time.GetUtcNow() + SignInLifetime;
        foreach (var (stale, at) in _signIns)
        {
            if (at < time.GetUtcNow())
            {
                _signIns.TryRemove(stale, out _);
            }
        }

        _signIns[Hash(token)] = expires;
        return (token, expires);
    }

    /// <summary>A session token for a client that is not a browser (<c>Authorization: Bearer</c>).</summary>
    public string IssueSession()
    {
        var session = NewToken();
        _sessions[Hash(session)] = 0;
        return session;
    }

    /// <summary>Spends a sign-in token: the new session, or null when the token is unknown, spent or expired.</summary>
    public string? SignIn(string token) =>
        _signIns.TryRemove(Hash(token), out var expires) && expires >= time.GetUtcNow() ? IssueSession() : null;

    public bool IsSession(string? token) => !string.IsNullOrEmpty(token) && _sessions.ContainsKey(Hash(token));

    private static string NewToken() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static string Hash(string token) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
}
