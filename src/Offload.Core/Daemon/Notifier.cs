using System.Diagnostics;
using System.Net.Http.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Offload.Config;
using Offload.Protocol;
using Offload.Store;

namespace Offload.Daemon;

/// <summary>
/// Tells the user when a task succeeds, fails, is limited or needs input: a desktop notification
/// where <c>notify-send</c> exists, and a JSON POST to the configured webhook. Notifications follow
/// the live events, one at a time; a failed delivery is logged and never touches the task.
/// </summary>
public sealed partial class Notifier(EventHub hub, ITaskStore store, Func<OffloadConfig> config, ILogger<Notifier> logger) : BackgroundService
{
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var subscription = hub.Subscribe(null);
        try
        {
            await foreach (var e in subscription.Reader.ReadAllAsync(stoppingToken))
            {
                if (e is StatusChanged { To: OffloadTaskStatus.Succeeded or OffloadTaskStatus.Failed or OffloadTaskStatus.Limited or OffloadTaskStatus.NeedsInput } s
                    && await store.GetTaskAsync(s.TaskId, stoppingToken) is { } task)
                {
                    await NotifyAsync(Describe(task, s, config().Notifications), stoppingToken);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public static TaskNotification Describe(TaskInfo task, StatusChanged change, NotificationSettings settings)
    {
        var id = task.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var status = change.To.ToWire();
        var command = change.To == OffloadTaskStatus.NeedsInput ? $"offload approve {id}" : $"offload show {id}";
        var reason = change.To == OffloadTaskStatus.Succeeded ? null : change.Reason ?? task.Error;
        var summary = change.To.IsFinal() ? task.Summary : null;
        var text = $"Offload task {id} *{status.Replace('_', ' ')}*: {task.Title}"
            + (reason is null ? "" : $" ({reason})")
            + (summary is { Length: > 0 } ? "\n" + Cut(summary, 600) : "")
            + (change.To == OffloadTaskStatus.NeedsInput ? $"\n`offload approve {id}` or `offload deny {id}`" : $"\n`offload show {id}`");
        return new TaskNotification(
            task.Id, status, task.Title, summary, reason, task.RepoPath, task.Branch,
            (settings.LinkTemplate ?? "offload://tasks/{id}").Replace("{id}", id, StringComparison.Ordinal),
            command, text, change.At);
    }

    private async Task NotifyAsync(TaskNotification notification, CancellationToken cancellationToken)
    {
        var settings = config().Notifications;
        if (settings.Desktop && FindOnPath("notify-send") is { } notifySend)
        {
            await DesktopAsync(notifySend, notification, cancellationToken);
        }

        if (!string.IsNullOrWhiteSpace(settings.WebhookUrl))
        {
            try
            {
                using var response = await _http.PostAsJsonAsync(settings.WebhookUrl, notification, OffloadJson.Info<TaskNotification>(), cancellationToken);
                if (!response.IsSuccessStatusCode)
                {
                    LogWebhookFailed(notification.Id, $"HTTP {(int)response.StatusCode}");
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
                LogWebhookFailed(notification.Id, e.Message);
            }
        }
    }

    private async Task DesktopAsync(string notifySend, TaskNotification n, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(notifySend)
        {
            ArgumentList =
            {
                "--app-name=Offload",
                "--urgency=" + (n.Status is "needs_input" or "failed" ? "critical" : "normal"),
                $"Offload: task {n.Id} {n.Status.Replace('_', ' ')}",
                n.Title + (n.Reason is null ? "" : $"\n{n.Reason}") + (n.Summary is null ? "" : "\n" + Cut(n.Summary, 300)) + $"\n{n.Command}",
            },
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        try
        {
            using var process = Process.Start(start)!;
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(TimeSpan.FromSeconds(5));
            try
            {
                await process.WaitForExitAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
            }
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            LogDesktopFailed(n.Id, e.Message);
        }
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);

    private static string Cut(string text, int max) => text.Length <= max ? text.Trim() : text[..(max - 1)].TrimEnd() + "…";

    public override void Dispose()
    {
        _http.Dispose();
        base.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "the webhook for task {TaskId} failed: {Why}")]
    private partial void LogWebhookFailed(long taskId, string why);

    [LoggerMessage(Level = LogLevel.Warning, Message = "notify-send for task {TaskId} failed: {Why}")]
    private partial void LogDesktopFailed(long taskId, string why);
}
