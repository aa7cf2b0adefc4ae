using System.Security.Claims;
using Aegis.Archive.Audit;
using Aegis.Archive.Deidentification;
using Aegis.Archive.Security;
using Aegis.Web.Auth;

namespace Aegis.Web.Admin;

public sealed record UserView(string Name, string Role, IReadOnlyList<string> Groups, bool Disabled, bool TotpEnabled,
    DateTimeOffset Created, DateTimeOffset Updated, DateTimeOffset? LockedUntil)
{
    public static UserView From(UserAccount u) => new(u.Name, Roles.ToName(u.Role), u.Groups, u.Disabled, u.TotpEnabled, u.Created, u.Updated, u.LockedUntil);
}

public sealed record CreateUserRequest(string Name, string Role, string Password, string[]? Groups);
public sealed record SetRoleRequest(string Role);
public sealed record SetPasswordRequest(string Password);
public sealed record SetGroupsRequest(string[] Groups);
public sealed record TotpEnrolmentView(string Secret, string OtpAuthUri);
public sealed record TotpConfirmRequest(string Code);

public sealed record AeView(string Title, string Host, int? Port, string Allow, string? TlsCertificateSha256, bool RequireTls, DateTimeOffset Created, DateTimeOffset Updated)
{
    public static AeView From(AeEntry e) => new(e.Title, e.Host, e.Port, Roles.FormatServices(e.Allowed), e.TlsCertificateSha256, e.RequireTls, e.Created, e.Updated);
}

public sealed record AddAeRequest(string Title, string Host, int? Port, string? Allow, string? TlsCertificateSha256, bool RequireTls);
public sealed record ShareRequest(string With, DateTimeOffset? Expires);
public sealed record LabelRequest(string Label);
public sealed record ReleaseRequest(string Project);
public sealed record ProjectProfileRequest(string Profile);
public sealed record MeView(string Name, string Role, IReadOnlyList<string> Groups, IReadOnlyList<string> Permissions, string AuthenticationType);
public sealed record AuditRecordView(long Sequence, DateTimeOffset Time, string Kind, string EventCode, string Outcome, string Who, string? Remote,
    IReadOnlyList<string> PatientIds, IReadOnlyList<string> StudyUids, string Xml);
public sealed record AuditVerifyView(bool Ok, long RecordsChecked, long? FirstBadSequence, string? Problem);

/// <summary>
/// The admin API (issue 5): the same operations as `aegis user|ae|share|audit` on the same stores, over HTTPS.
/// /api/users, /api/aes and /api/studies/{uid}/shares|labels need the admin role; /api/audit the auditor's
/// ReadAudit permission; /api/me any authenticated caller. Every change is audited by the store it goes through
/// (Security/Object/User attributes changed, PS3.15 A.5.3), naming the caller and address; reading the audit
/// trail is itself audited (Audit Log Used). Input errors are 400 with a problem+json body, unknown names 404,
/// duplicates 409.
/// </summary>
public static class AdminApi
{
    public static void MapAdminApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api").WithTags("admin");

        api.MapGet("/me", (ClaimsPrincipal user) => new MeView(user.UserName(), user.AegisRole() is { } r ? Roles.ToName(r) : "",
                user.FindAll(AegisClaims.Groups).Select(c => c.Value).ToList(),
                Enum.GetValues<Permission>().Where(p => p != Permission.None && user.Has(p)).Select(p => p.ToString()).ToList(),
                user.Identity?.AuthenticationType ?? ""))
            .RequireAuthorization().WithName("GetMe").WithSummary("The caller's name, role, groups and permissions");

        var users = api.MapGroup("/users").RequireAuthorization(AegisPolicies.Admin);
        users.MapGet("/", async (AccountStore s, CancellationToken ct) => (await s.ListAsync(ct)).Select(UserView.From).ToList())
            .WithName("ListUsers").WithSummary("List user accounts");
        users.MapGet("/{name}", (string name, AccountStore s, CancellationToken ct) => Run(async () =>
                await s.GetAsync(name, ct) is { } u ? Results.Ok(UserView.From(u)) : Results.NotFound()))
            .WithName("GetUser").Produces<UserView>();
        users.MapPost("/", (CreateUserRequest body, HttpContext ctx, AccountStore s) => Run(async () =>
            {
                var u = await s.CreateUserAsync(body.Name, Roles.Parse(body.Role), body.Password, body.Groups, By(ctx), ctx.RequestAborted);
                return Results.Created($"/api/users/{u.Name}", UserView.From(u));
            }))
            .WithName("CreateUser").WithSummary("Create a user (password checked against the policy)").Produces<UserView>(201);
        users.MapPost("/{name}/disable", (string name, HttpContext ctx, AccountStore s) => Run(async () =>
            { await s.SetDisabledAsync(name, true, By(ctx), ctx.RequestAborted); return Results.NoContent(); })).WithName("DisableUser");
        users.MapPost("/{name}/enable", (string name, HttpContext ctx, AccountStore s) => Run(async () =>
            { await s.SetDisabledAsync(name, false, By(ctx), ctx.RequestAborted); return Results.NoContent(); })).WithName("EnableUser");
        users.MapPost("/{name}/unlock", (string name, HttpContext ctx, AccountStore s) => Run(async () =>
            { await s.UnlockAsync(name, By(ctx), ctx.RequestAborted); return Results.NoContent(); })).WithName("UnlockUser");
        users.MapPut("/{name}/role", (string name, SetRoleRequest body, HttpContext ctx, AccountStore s) => Run(async () =>
            { await s.SetRoleAsync(name, Roles.Parse(body.Role), By(ctx), ctx.RequestAborted); return Results.NoContent(); })).WithName("SetUserRole");
        users.MapPut("/{name}/groups", (string name, SetGroupsRequest body, HttpContext ctx, AccountStore s) => Run(async () =>
            { await s.SetGroupsAsync(name, body.Groups ?? [], By(ctx), ctx.RequestAborted); return Results.NoContent(); })).WithName("SetUserGroups");
        users.MapPut("/{name}/password", (string name, SetPasswordRequest body, HttpContext ctx, AccountStore s) => Run(async () =>
            { await s.SetPasswordAsync(name, body.Password, By(ctx), ctx.RequestAborted); return Results.NoContent(); }))
            .WithName("ResetUserPassword").WithSummary("Reset a user's password (policy applies)");
        // Issue 8: researchers see the studies released to their de-identification projects, de-identified.
        users.MapGet("/{name}/projects", (string name, AccountStore s, CancellationToken ct) => Run(async () => Results.Ok(await s.GetUserProjectsAsync(name, ct))))
            .WithName("ListUserProjects");
        users.MapPut("/{name}/projects/{project}", (string name, string project, HttpContext ctx, AccountStore s) => Run(async () =>
            { await s.AddUserProjectAsync(name, project, By(ctx), ctx.RequestAborted); return Results.NoContent(); }))
            .WithName("AddUserProject").WithSummary("Bind a researcher to a de-identification project");
        users.MapDelete("/{name}/projects/{project}", (string name, string project, HttpContext ctx, AccountStore s) => Run(async () =>
            { await s.RemoveUserProjectAsync(name, project, By(ctx), ctx.RequestAborted); return Results.NoContent(); })).WithName("RemoveUserProject");
        api.MapPut("/projects/{project}/profile", (string project, ProjectProfileRequest body, HttpContext ctx) => Run(async () =>
            {
                var view = ctx.RequestServices.GetService<ResearchView>() ?? throw new InvalidOperationException("the de-identified view is not configured");
                return Results.Ok(new ProjectProfileRequest(await view.Projects.SetViewProfileAsync(project, body.Profile, ctx.RequestAborted)));
            }))
            .RequireAuthorization(AegisPolicies.Admin).WithName("SetProjectProfile").WithSummary("Set the profile a project's researchers see data through");
        // TOTP (RFC 6238), as `aegis user totp`: a new secret is pending until confirmed with a current code.
        users.MapPost("/{name}/totp", (string name, HttpContext ctx, AccountStore s) => Run(async () =>
            {
                var e = await s.BeginTotpEnrolmentAsync(name, ct: ctx.RequestAborted);
                ctx.Response.Headers.CacheControl = "no-store"; // the secret is shown once
                return Results.Ok(new TotpEnrolmentView(e.Base32Secret, e.OtpAuthUri));
            })).WithName("BeginTotpEnrolment").WithSummary("Create a pending TOTP secret for a user (returned once)");
        users.MapPost("/{name}/totp/confirm", (string name, TotpConfirmRequest body, HttpContext ctx, AccountStore s) => Run(async () =>
            await s.ConfirmTotpEnrolmentAsync(name, body.Code ?? "", ctx.RequestAborted)
                ? Results.NoContent()
                : Results.Problem(title: "the code was not accepted", statusCode: 400)))
            .WithName("ConfirmTotpEnrolment").WithSummary("Enable the pending TOTP secret with a current code");
        users.MapDelete("/{name}/totp", (string name, HttpContext ctx, AccountStore s) => Run(async () =>
            { await s.DisableTotpAsync(name, By(ctx), ctx.RequestAborted); return Results.NoContent(); })).WithName("DisableTotp");

        var aes = api.MapGroup("/aes").RequireAuthorization(AegisPolicies.Admin);
        aes.MapGet("/", async (AeRegistry r, CancellationToken ct) => (await r.ListAsync(ct)).Select(AeView.From).ToList()).WithName("ListAes");
        aes.MapPost("/", (AddAeRequest body, HttpContext ctx, AeRegistry r) => Run(async () =>
            {
                var e = await r.AddAsync(new AeEntry
                {
                    Title = body.Title, Host = body.Host, Port = body.Port,
                    Allowed = string.IsNullOrWhiteSpace(body.Allow) ? DimseServices.Echo : Roles.ParseServices(body.Allow),
                    TlsCertificateSha256 = string.IsNullOrWhiteSpace(body.TlsCertificateSha256) ? null : body.TlsCertificateSha256,
                    RequireTls = body.RequireTls,
                }, By(ctx), ctx.RequestAborted);
                return Results.Created($"/api/aes/{Uri.EscapeDataString(e.Title)}", AeView.From(e));
            })).WithName("AddAe").Produces<AeView>(201);
        aes.MapDelete("/{title}", (string title, HttpContext ctx, AeRegistry r) => Run(async () =>
            { await r.RemoveAsync(title, By(ctx), ctx.RequestAborted); return Results.NoContent(); })).WithName("RemoveAe");

        var studies = api.MapGroup("/studies/{uid}").RequireAuthorization(AegisPolicies.Admin);
        studies.MapPost("/shares", (string uid, ShareRequest body, HttpContext ctx, AccountStore s) => Run(async () =>
            { await s.ShareStudyAsync(uid, body.With, body.Expires, By(ctx), ctx.RequestAborted); return Results.NoContent(); }))
            .WithName("ShareStudy").WithSummary("Share a study with a user or group, optionally until a date");
        studies.MapDelete("/shares/{grantee}", (string uid, string grantee, HttpContext ctx, AccountStore s) => Run(async () =>
            { await s.UnshareStudyAsync(uid, grantee, By(ctx), ctx.RequestAborted); return Results.NoContent(); })).WithName("UnshareStudy");
        studies.MapPost("/releases", (string uid, ReleaseRequest body, HttpContext ctx, AccountStore s) => Run(async () =>
            { await s.ReleaseStudyAsync(uid, body.Project, By(ctx), ctx.RequestAborted); return Results.NoContent(); }))
            .WithName("ReleaseStudy").WithSummary("Release a study to a de-identification project (its researchers see it de-identified)");
        studies.MapDelete("/releases/{project}", (string uid, string project, HttpContext ctx, AccountStore s) => Run(async () =>
            { await s.WithdrawStudyAsync(uid, project, By(ctx), ctx.RequestAborted); return Results.NoContent(); })).WithName("WithdrawStudy");
        studies.MapGet("/labels", (string uid, AccountStore s, CancellationToken ct) => Run(async () => Results.Ok(await s.GetStudyLabelsAsync(uid, ct))))
            .WithName("ListStudyLabels");
        studies.MapPost("/labels", (string uid, LabelRequest body, HttpContext ctx, AccountStore s) => Run(async () =>
            { await s.AddStudyLabelAsync(uid, body.Label, By(ctx), ctx.RequestAborted); return Results.NoContent(); })).WithName("AddStudyLabel");
        studies.MapDelete("/labels/{label}", (string uid, string label, HttpContext ctx, AccountStore s) => Run(async () =>
            { await s.RemoveStudyLabelAsync(uid, label, By(ctx), ctx.RequestAborted); return Results.NoContent(); })).WithName("RemoveStudyLabel");

        var audit = api.MapGroup("/audit").RequireAuthorization(AegisPolicies.Audit);
        audit.MapGet("/", (HttpContext ctx, AuditTrail trail, DateTimeOffset? from, DateTimeOffset? to, string? user, string? @event,
                string? patientId, string? studyUid, int? limit) => Run(async () =>
            {
                var records = await trail.ListAsync(new AuditQuery
                {
                    From = from, To = to, User = user, Event = @event, PatientId = patientId, StudyUid = studyUid, Limit = Math.Clamp(limit ?? 100, 1, 10_000),
                }, ctx.RequestAborted);
                await trail.WriteAsync(AuditEvent.AuditLogUsed(By(ctx), AuditOutcome.Success, $"listed {records.Count} records over the API"), ctx.RequestAborted);
                return Results.Ok(records.Select(r => new AuditRecordView(r.Sequence, r.Time, r.Kind, r.EventCode, r.Outcome.ToString(), r.Who, r.Remote,
                    r.PatientIds, r.StudyUids, r.Xml)).ToList());
            })).WithName("ListAudit").WithSummary("Audit records, newest last; filters combine with AND");
        audit.MapGet("/verify", (HttpContext ctx, AuditTrail trail) => Run(async () =>
            {
                var v = await trail.VerifyAsync(ctx.RequestAborted);
                await trail.WriteAsync(AuditEvent.AuditLogUsed(By(ctx), v.Ok ? AuditOutcome.Success : AuditOutcome.SeriousFailure,
                    v.Ok ? $"hash chain verified over the API ({v.RecordsChecked} records)" : $"hash chain broken at {v.FirstBadSequence}: {v.Problem}"), ctx.RequestAborted);
                return Results.Ok(new AuditVerifyView(v.Ok, v.RecordsChecked, v.FirstBadSequence, v.Problem));
            })).WithName("VerifyAudit").WithSummary("Verify the audit trail's hash chain");
    }

    private static AuditActor By(HttpContext ctx) => ctx.User.ToAuditActor(ctx.Connection.RemoteIpAddress?.ToString());

    /// <summary>Store exceptions to HTTP: bad input 400, unknown 404, duplicate 409 (messages name the field, never a secret).</summary>
    private static async Task<IResult> Run(Func<Task<IResult>> action)
    {
        try { return await action().ConfigureAwait(false); }
        catch (WeakPasswordException ex) { return Results.Problem(ex.Message, statusCode: 400, title: "password refused"); }
        catch (KeyNotFoundException ex) { return Results.Problem(ex.Message, statusCode: 404, title: "not found"); }
        catch (ArgumentException ex) { return Results.Problem(ex.Message, statusCode: 400, title: "invalid request"); }
        catch (InvalidOperationException ex) { return Results.Problem(ex.Message, statusCode: 409, title: "conflict"); }
    }
}
