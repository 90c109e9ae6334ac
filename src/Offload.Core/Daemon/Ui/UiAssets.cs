using System.Collections.Frozen;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Offload.Daemon.Ui;

/// <summary>
/// The dashboard's files (<c>Daemon/Ui/web/</c>), compiled into the daemon as resources: nothing is read from disk or a
/// CDN, so the page works offline and matches the daemon it talks to. Loaded on the first request, not at start.
/// </summary>
public static class UiAssets
{
    private const string Prefix = "ui/";

    private static readonly Lazy<FrozenDictionary<string, Asset>> Files = new(Load);

    public static void Map(WebApplication app)
    {
        app.MapGet("/", (HttpContext context) => ServeAsync(context, "index.html"));
        app.MapGet("/assets/{*path}", (string path, HttpContext context) => ServeAsync(context, path));
    }

    /// <summary>The names of the files there are (tests check every one is reachable and that no page names a file that is not).</summary>
    public static IEnumerable<string> Names => Files.Value.Keys;

    private static Task ServeAsync(HttpContext context, string path)
    {
        if (!Files.Value.TryGetValue(path, out var asset))
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return Task.CompletedTask;
        }

        context.Response.Headers.ETag = asset.ETag;
        context.Response.Headers.CacheControl = "no-cache"; // revalidated each time (304): a new daemon's files show at once
        if (context.Request.Headers.IfNoneMatch == asset.ETag)
        {
            context.Response.StatusCode = StatusCodes.Status304NotModified;
            return Task.CompletedTask;
        }

        context.Response.ContentType = asset.ContentType;
        context.Response.ContentLength = asset.Bytes.Length;
        return context.Response.Body.WriteAsync(asset.Bytes).AsTask();
    }

    private static FrozenDictionary<string, Asset> Load()
    {
        var assembly = typeof(UiAssets).Assembly;
        var files = new Dictionary<string, Asset>(StringComparer.Ordinal);
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            var bytes = new byte[stream.Length];
            stream.ReadExactly(bytes);
            files[name[Prefix.Length..]] = new Asset(bytes, ContentType(name), $"\"{Convert.ToHexString(SHA256.HashData(bytes), 0, 8)}\"");
        }

        return files.ToFrozenDictionary(StringComparer.Ordinal);
    }

    private static string ContentType(string name) => Path.GetExtension(name) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".js" or ".mjs" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".svg" => "image/svg+xml",
        ".png" => "image/png",
        ".json" => "application/json",
        _ => "text/plain; charset=utf-8",
    };

    private sealed record Asset(byte[] Bytes, string ContentType, string ETag);
}
