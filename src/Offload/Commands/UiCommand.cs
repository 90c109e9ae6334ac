using System.CommandLine;
using System.Diagnostics;
using Offload.Protocol;

namespace Offload.Cli.Commands;

/// <summary><c>offload ui</c>: opens the web dashboard (docs/ui.md) with a fresh sign-in link.</summary>
public static class UiCommand
{
    public static Command Create()
    {
        var noOpen = new Option<bool>("--no-open") { Description = "Print the link instead of opening a browser" };
        var json = Common.JsonOption();
        var command = new Command("ui", """
            Open the web dashboard: the board of tasks, each task's live log, approvals, replies, diffs, merges, compare and stats.
            The daemon opens its listener on 127.0.0.1 (a free port, or ui.port in the config) and hands out a link with a
            fresh token that signs one browser in, once, within 15 minutes; the browser keeps a cookie until the daemon stops.
            """)
        {
            noOpen, json,
        };
        command.SetAction(async (parse, ct) => await Common.WithClientAsync(async client =>
        {
            var ui = await client.PostAsync<UiResponse>("v1/ui", null, ct);
            if (parse.GetValue(json))
            {
                Output.Json(ui);
                return ExitCodes.Ok;
            }

            Console.Out.WriteLine(ui.Url);
            if (!parse.GetValue(noOpen))
            {
                if (Open(ui.Url) is { } why)
                {
                    Console.Error.WriteLine($"offload: {why}; open the link above in a browser (it signs in once, within 15 minutes)");
                }
            }

            return ExitCodes.Ok;
        }, cancellationToken: ct));
        return command;
    }

    /// <summary>Hands the link to the desktop's browser (xdg-open) without waiting for it; why it could not, or null.</summary>
    private static string? Open(string url)
    {
        var opener = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, "xdg-open")).FirstOrDefault(File.Exists);
        if (opener is null)
        {
            return "no xdg-open on PATH to open a browser with";
        }

        // Through sh, to give the browser /dev/null for its output: a pipe of ours would break when this command exits.
        var info = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        foreach (var arg in (string[])["-c", "exec \"$0\" \"$1\" </dev/null >/dev/null 2>&1", opener, url])
        {
            info.ArgumentList.Add(arg);
        }

        try
        {
            using var process = Process.Start(info);
            return null;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return $"xdg-open did not start: {e.Message}";
        }
    }
}
