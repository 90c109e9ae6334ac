using System.Net;
using Microsoft.AspNetCore.Http;

namespace Offload.Engines.Claude;

/// <summary>
/// The daemon's end of a sandboxed Claude Code's model bridge: <c>/claude/TOKEN/REST</c> is sent on to
/// the run's one model endpoint as <c>BASE/REST</c>, streamed both ways (SSE goes out as it comes),
/// with Claude Code's credential headers replaced by the daemon's. An unknown token gets 401; nothing
/// else is reachable through it. Served beside the permission tool (<see cref="ClaudePermissionServer"/>).
/// </summary>
public static class ClaudeModelProxy
{
    public const string PathPrefix = "/claude/";

    /// <summary>What the bridge answers once a run's <see cref="ModelCallBudget"/> is spent.</summary>
    public const string TurnLimitMessage = "Offload: the task's turn limit is reached; this model call was not made.";

    private static readonly HttpClient Client = new(new SocketsHttpHandler
    {
        AutomaticDecompression = DecompressionMethods.None, // bytes pass as they are, Content-Encoding with them
        UseCookies = false,
        AllowAutoRedirect = false,
        PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),
    })
    {
        Timeout = Timeout.InfiniteTimeSpan, // Claude Code has its own timeouts and retries
    };

    private static readonly HashSet<string> NotForwarded = new(StringComparer.OrdinalIgnoreCase)
    {
        "Host", "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
    };

    public static async Task HandleAsync(HttpContext context, Func<string, ClaudeUpstream?> upstreamOf)
    {
        var path = context.Request.Path.Value ?? "";
        var rest = path[PathPrefix.Length..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var token = slash < 0 ? rest : rest[..slash];
        if (upstreamOf(token) is not { } upstream)
        {
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            return;
        }

        var target = new Uri(upstream.BaseUrl.ToString().TrimEnd('/') + (slash < 0 ? "/" : rest[slash..]) + context.Request.QueryString);
        if (!string.Equals(target.Authority, upstream.BaseUrl.Authority, StringComparison.OrdinalIgnoreCase) || target.Scheme != upstream.BaseUrl.Scheme)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            return;
        }

        if (upstream.Budget is { Spent: true })
        {
            // in the OpenAI error shape (only the codex engine counts): a 400 is not retried, so Codex ends its turn at once
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync($$$"""{"error":{"message":"{{{TurnLimitMessage}}}","type":"invalid_request_error","param":null,"code":"offload_turn_limit"}}""", context.RequestAborted);
            return;
        }

        using var request = new HttpRequestMessage(new HttpMethod(context.Request.Method), target);
        var redacted = false;
        if (context.Request.ContentLength > 0 || context.Request.Headers.TransferEncoding.Count > 0)
        {
            if (upstream.Redact is { } redact && context.Request.Headers.ContentEncoding.Count == 0)
            {
                // The task's secrets (.worktreeinclude values Claude Code read) are replaced before the request leaves.
                using var reader = new StreamReader(context.Request.Body, System.Text.Encoding.UTF8);
                var text = await reader.ReadToEndAsync(context.RequestAborted);
                var clean = redact(text);
                redacted = clean != text;
                request.Content = new ByteArrayContent(System.Text.Encoding.UTF8.GetBytes(clean));
            }
            else
            {
                request.Content = new StreamContent(context.Request.Body);
            }
        }

        var credential = upstream.Credential?.HeaderValue();
        foreach (var (name, values) in context.Request.Headers)
        {
            if (NotForwarded.Contains(name) || (redacted && name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
                || (credential is not null && (name.Equals("x-api-key", StringComparison.OrdinalIgnoreCase) || name.Equals("Authorization", StringComparison.OrdinalIgnoreCase))))
            {
                continue;
            }

            if (!request.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values))
            {
                request.Content?.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
            }
        }

        if (credential is not null)
        {
            request.Headers.TryAddWithoutValidation(upstream.Credential!.Header, credential);
        }

        var cancellationToken = context.RequestAborted;
        HttpResponseMessage response;
        try
        {
            response = await Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        }
        catch (HttpRequestException e)
        {
            // in the Anthropic API's error shape, so Claude Code shows it (and retries, as for any 5xx)
            context.Response.StatusCode = StatusCodes.Status502BadGateway;
            context.Response.ContentType = "application/json";
            var message = System.Text.Json.JsonEncodedText.Encode($"Offload's model bridge could not reach {upstream.BaseUrl}: {e.Message}");
            await context.Response.WriteAsync($$$"""{"type":"error","error":{"type":"api_error","message":"{{{message}}}"}}""", cancellationToken);
            return;
        }

        using (response)
        {
            if (response.StatusCode == HttpStatusCode.OK)
            {
                upstream.Budget?.Answered();
            }

            context.Response.StatusCode = (int)response.StatusCode;
            foreach (var (name, values) in response.Headers.Concat(response.Content.Headers))
            {
                if (!NotForwarded.Contains(name))
                {
                    context.Response.Headers[name] = values.ToArray();
                }
            }

            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            var buffer = new byte[16 * 1024];
            int read;
            while ((read = await body.ReadAsync(buffer, cancellationToken)) > 0)
            {
                await context.Response.Body.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                await context.Response.Body.FlushAsync(cancellationToken); // a server-sent event goes on as soon as it arrives
            }
        }
    }
}
