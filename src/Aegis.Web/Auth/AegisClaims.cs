using System.Security.Claims;
using Aegis.Archive.Audit;
using Aegis.Archive.Security;

namespace Aegis.Web.Auth;

/// <summary>Claims Aegis puts on an authenticated HTTP principal, and how to read them back.</summary>
public static class AegisClaims
{
    public const string Role = ClaimTypes.Role;
    public const string Name = ClaimTypes.Name;
    public const string Groups = "aegis:group";

    public static ClaimsPrincipal Create(UserAccount user, string scheme)
    {
        var claims = new List<Claim> { new(Name, user.Name), new(Role, Roles.ToName(user.Role)) };
        claims.AddRange(user.Groups.Select(g => new Claim(Groups, g)));
        return new ClaimsPrincipal(new ClaimsIdentity(claims, scheme, Name, Role));
    }

    public static string UserName(this ClaimsPrincipal p) => p.FindFirstValue(Name) ?? "";

    public static Role? AegisRole(this ClaimsPrincipal p) =>
        Roles.TryParse(p.FindFirstValue(Role), out var r) ? r : null;

    public static Permission Permissions(this ClaimsPrincipal p) => p.AegisRole() is { } r ? Roles.PermissionsOf(r) : Permission.None;

    public static bool Has(this ClaimsPrincipal p, Permission permission) => (p.Permissions() & permission) == permission;

    public static AuditActor ToAuditActor(this ClaimsPrincipal p, string? remoteAddress) => new(p.UserName(), remoteAddress, null, p.UserName());
}

/// <summary>Authorization policy names; each requires the permission of the same name.</summary>
public static class AegisPolicies
{
    public const string Store = "aegis:store";
    public const string Query = "aegis:query";
    public const string Retrieve = "aegis:retrieve";
    public const string Admin = "aegis:admin";
    public const string Audit = "aegis:audit";
    /// <summary>A browser session from our login page (the viewer's files only).</summary>
    public const string Session = "aegis:session";
}
