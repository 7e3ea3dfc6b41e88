"""Panel addresses. One object is `/d/<domain>/user/<login>/`, a list is
`/d/<domain>/users/`: a mailbox called "new" can never shadow the add page."""

from django.urls import path

from courriel.autoconfig import views as autoconfig
from courriel.panel.views import (
    aliases,
    auth,
    backups,
    domains,
    greylist,
    mailboxes,
    passwords,
    provider,
    queue,
    selfservice,
    tokens,
)

urlpatterns = [
    path("", auth.home, name="home"),
    path("login/", auth.login_view, name="login"),
    path("logout/", auth.logout_view, name="logout"),
    path("language/", auth.language_view, name="language"),
    path("switch/", domains.switch, name="switch"),
    path("password-strength/", passwords.strength, name="password-strength"),
    # A virtual server (chapters 3 to 11)
    path("d/<str:domain>/", domains.info, name="domain-info"),
    path("d/<str:domain>/details/", domains.details, name="domain-details"),
    path("d/<str:domain>/delete/", domains.delete, name="domain-delete"),
    path("d/<str:domain>/subservers/new/", domains.subserver_new, name="subserver-new"),
    path("d/<str:domain>/domain-aliases/add/", domains.domain_alias_add, name="domain-alias-add"),
    path(
        "d/<str:domain>/domain-aliases/delete/",
        domains.domain_alias_delete,
        name="domain-alias-delete",
    ),
    path("d/<str:domain>/verify/", domains.verify, name="domain-verify"),
    path("d/<str:domain>/approve/", domains.approve, name="domain-approve"),
    path("d/<str:domain>/audit/", domains.audit, name="domain-audit"),
    path("d/<str:domain>/dns/", domains.dns, name="domain-dns"),
    path("d/<str:domain>/backups/", backups.domain_backups, name="domain-backups"),
    path("d/<str:domain>/greylisting/", greylist.domain_lookup, name="domain-greylisting"),
    path(
        "d/<str:domain>/greylisting/switch/",
        greylist.domain_switch,
        name="domain-greylisting-switch",
    ),
    path("d/<str:domain>/users/", mailboxes.user_list, name="users"),
    path("d/<str:domain>/users/new/", mailboxes.user_new, name="user-new"),
    path("d/<str:domain>/users/batch/", mailboxes.batch, name="users-batch"),
    path("d/<str:domain>/users/delete/", mailboxes.delete_selected, name="users-delete"),
    path("d/<str:domain>/user/<str:login>/", mailboxes.user_edit, name="user"),
    path(
        "d/<str:domain>/user/<str:login>/generate-password/",
        mailboxes.generate_password,
        name="user-generate-password",
    ),
    path(
        "d/<str:domain>/user/<str:login>/download",
        backups.user_download,
        name="user-download",
    ),
    path(
        "d/<str:domain>/user/<str:login>/mobileconfig",
        autoconfig.user_profile,
        name="user-mobileconfig",
    ),
    path("d/<str:domain>/passwords/", passwords.pick, name="passwords"),
    path("d/<str:domain>/password/<str:login>/", passwords.change, name="password"),
    path("d/<str:domain>/aliases/", aliases.alias_list, name="aliases"),
    path("d/<str:domain>/aliases/new/", aliases.alias_new, name="alias-new"),
    path("d/<str:domain>/aliases/delete/", aliases.delete_selected, name="aliases-delete"),
    path("d/<str:domain>/alias/<path:name>/", aliases.alias_edit, name="alias"),
    # Self-service
    path("me/", selfservice.overview, name="me"),
    path("me/password/", selfservice.password, name="me-password"),
    path("me/forwarding/", selfservice.forwarding, name="me-forwarding"),
    path("me/autoreply/", selfservice.autoreply, name="me-autoreply"),
    path("me/mobileconfig", autoconfig.own_profile, name="me-mobileconfig"),
    path("me/download", backups.own_download, name="me-download"),
    # API tokens
    path("tokens/", tokens.token_list, name="tokens"),
    path("tokens/<int:token_id>/revoke/", tokens.token_revoke, name="token-revoke"),
    # Provider
    path("provider/servers/", provider.servers, name="provider-servers"),
    path("provider/server/<str:name>/", provider.server_edit, name="provider-server"),
    path(
        "provider/server/<str:name>/delete/",
        provider.server_delete,
        name="provider-server-delete",
    ),
    path("provider/plans/", provider.plans, name="provider-plans"),
    path("provider/plans/new/", provider.plan_new, name="provider-plan-new"),
    path("provider/plan/<str:name>/", provider.plan_edit, name="provider-plan"),
    path("provider/plan/<str:name>/delete/", provider.plan_delete, name="provider-plan-delete"),
    path("provider/domains/", provider.domains, name="provider-domains"),
    path("provider/domains/new/", provider.domain_new, name="provider-domain-new"),
    path(
        "provider/domain/<str:name>/impersonate/",
        provider.impersonate,
        name="provider-impersonate",
    ),
    path("provider/impersonate/stop/", provider.impersonate_stop, name="impersonate-stop"),
    path("provider/audit/", provider.audit, name="provider-audit"),
    path("provider/queue/", queue.queue_list, name="provider-queue"),
    path("provider/queue/retry/", queue.queue_retry, name="provider-queue-retry"),
    path("provider/queue/delete/", queue.queue_delete, name="provider-queue-delete"),
    path("provider/queue/entry/<str:entry_id>/", queue.queue_entry, name="provider-queue-entry"),
    path("provider/backups/", backups.provider_backups, name="provider-backups"),
    path("provider/greylisting/", greylist.status, name="provider-greylisting"),
    path("provider/greylisting/purge/", greylist.purge, name="provider-greylisting-purge"),
    path(
        "provider/greylisting/whitelist/",
        greylist.whitelist,
        name="provider-greylisting-whitelist",
    ),
    path(
        "provider/greylisting/whitelist/remove/",
        greylist.whitelist_remove,
        name="provider-greylisting-whitelist-remove",
    ),
    path(
        "provider/greylisting/whitelist/import/",
        greylist.whitelist_import,
        name="provider-greylisting-whitelist-import",
    ),
]
