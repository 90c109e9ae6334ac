using System.CommandLine;
using System.Globalization;
using Offload.Protocol;

namespace Offload.Cli.Commands;

public static class GcCommand
{
    public static Command Create()
    {
        var json = Common.JsonOption();
        var command = new Command("gc", "Free the worktrees of merged and discarded tasks, and say how much disk that gave back; unmerged work is never touched")
        {
            json,
        };
        command.SetAction(async (parse, ct) => await Common.WithClientAsync(async client =>
        {
            var gc = await client.PostAsync<GcResponse>("v1/gc", null, ct);
            if (parse.GetValue(json))
            {
                Output.Json(gc);
                return ExitCodes.Ok;
            }

            foreach (var item in gc.Removed)
            {
                Console.Out.WriteLine($"freed  task {item.Id,-4} {Bytes(item.Bytes),9}  {item.Reason}");
            }

            foreach (var item in gc.Kept)
            {
                Console.Out.WriteLine(Output.Paint($"kept   task {item.Id,-4} {Bytes(item.Bytes),9}  {item.Reason}", "2"));
            }

            Console.Out.WriteLine($"freed {Bytes(gc.BytesFreed)} ({gc.Removed.Count} worktree{(gc.Removed.Count == 1 ? "" : "s")})"
                + (gc.Kept.Count == 0 ? "" : $"; kept {gc.Kept.Count} (merge or discard them first)"));
            return ExitCodes.Ok;
        }, cancellationToken: ct));
        return command;
    }

    internal static string Bytes(long n) =>
        n < 1024 ? $"{n} B"
        : n < 1024 * 1024 ? (n / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " KiB"
        : n < 1024L * 1024 * 1024 ? (n / (1024.0 * 1024)).ToString("0.0", CultureInfo.InvariantCulture) + " MiB"
        : (n / (1024.0 * 1024 * 1024)).ToString("0.00", CultureInfo.InvariantCulture) + " GiB";
}
