using System.CommandLine;
using Offload.Protocol;

namespace Offload.Cli.Commands;

public static class MergeCommand
{
    public static Command Create()
    {
        var id = Common.TaskIdArgument();
        var noSquash = new Option<bool>("--no-squash") { Description = "Make a merge commit with both parents instead of one squashed commit" };
        var json = Common.JsonOption();
        var command = new Command("merge",
            "Bring the task's branch into your current branch as one squashed commit (title and summary as its message); refuses, changing nothing, on conflicts")
        {
            id, noSquash, json,
        };
        command.SetAction(async (parse, ct) => await Common.WithClientAsync(async client =>
        {
            var merged = await client.PostAsync<MergeResponse>(
                $"v1/tasks/{parse.GetValue(id)}/merge", new MergeRequest(Squash: !parse.GetValue(noSquash)), ct);
            if (parse.GetValue(json))
            {
                Output.Json(merged);
            }
            else if (merged.Commit is null)
            {
                Console.Out.WriteLine($"task {merged.Id}: nothing to merge, {merged.Into} already has its changes");
            }
            else
            {
                Console.Out.WriteLine($"merged task {merged.Id} into {merged.Into} as {merged.Commit[..10]} ({merged.Mode}) · {Files(merged.Files)}");
            }

            return ExitCodes.Ok;
        }, cancellationToken: ct));
        return command;
    }

    internal static string Files(IReadOnlyList<string> files) =>
        files.Count switch
        {
            0 => "no files",
            <= 5 => $"{files.Count} file{(files.Count == 1 ? "" : "s")}: {string.Join(", ", files)}",
            _ => $"{files.Count} files: {string.Join(", ", files.Take(5))}, …",
        };
}
