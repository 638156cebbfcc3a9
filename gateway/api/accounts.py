"""Accounts: reading, contacts, users, subscriptions, payment method and VAT number."""

from __future__ import annotations

from flask.views import MethodView

from gateway.access import load_account
from gateway.api.blueprint import Blueprint
from gateway.api.openapi import refuses
from gateway.api.pagination import paginated
from gateway.api.schemas import (
    AccountSchema,
    ContactInSchema,
    ContactSchema,
    PaymentMethodInSchema,
    PaymentMethodSchema,
    SubscriptionInSchema,
    SubscriptionSchema,
    UserInSchema,
    UserSchema,
    VatNumberInSchema,
    VatNumberSchema,
)
from gateway.database import session
from gateway.services import accounts, admin, requirements

blp = Blueprint("accounts", __name__, description="Accounts")


@blp.route("/accounts/<account_id>")
class AccountById(MethodView):
    @blp.response(200, AccountSchema)
    def get(self, account_id):
        """Read an account with its segment and the reasons for it."""
        return accounts.read(session(), account_id)


@blp.route("/accounts/<account_id>/contacts")
class Contacts(MethodView):
    @blp.arguments(ContactInSchema)
    @blp.response(201, ContactSchema)
    @refuses(blp, (422, "unknown_issuer"), (422, "issuer_required"))
    def post(self, data, account_id):
        """Add a contact to the account with roles."""
        db = session()
        return admin.create_contact(db, load_account(db, account_id, "admin"), data)


@blp.route("/accounts/<account_id>/users")
class Users(MethodView):
    @blp.response(200, UserSchema(many=True))
    @paginated(blp)
    def get(self, account_id):
        """List the account's users."""
        db = session()
        return admin.list_users(db, load_account(db, account_id))

    @blp.arguments(UserInSchema)
    @blp.response(201, UserSchema)
    def post(self, data, account_id):
        """Add a user who can hold a license (admin, or the account's billing contact)."""
        return accounts.add_user(session(), account_id, data)


@blp.route("/accounts/<account_id>/subscriptions")
class Subscriptions(MethodView):
    @blp.response(200, SubscriptionSchema(many=True))
    @paginated(blp)
    def get(self, account_id):
        """List the account's subscriptions."""
        return accounts.list_subscriptions(session(), account_id)

    @blp.arguments(SubscriptionInSchema)
    @blp.response(201, SubscriptionSchema)
    @refuses(blp, (422, "unknown_product"), (422, "unknown_plan"))
    def post(self, data, account_id):
        """Create a subscription."""
        db = session()
        account = load_account(db, account_id, "admin")
        return accounts.subscription_view(db, admin.create_subscription(db, account, data), account)


@blp.route("/subscriptions/<subscription_id>")
class SubscriptionById(MethodView):
    @blp.response(200, SubscriptionSchema)
    def get(self, subscription_id):
        """Read a subscription."""
        return accounts.read_subscription(session(), subscription_id)


@blp.route("/accounts/<account_id>/payment-method")
class PaymentMethod(MethodView):
    @blp.arguments(PaymentMethodInSchema)
    @blp.response(200, PaymentMethodSchema)
    @refuses(blp, (403, "not_billing_contact"), (422, "raw_card_data_refused"))
    def put(self, data, account_id):
        """Store a payment provider's token with brand, last4 and expiry."""
        return requirements.set_payment_method(session(), account_id, data)


@blp.route("/accounts/<account_id>/vat-number")
class VatNumber(MethodView):
    @blp.arguments(VatNumberInSchema)
    @blp.response(200, VatNumberSchema)
    @refuses(blp, (403, "not_billing_contact"), (422, "invalid_vat_number"))
    def put(self, data, account_id):
        """Validate and store the account's VAT number."""
        return requirements.set_vat_number(session(), account_id, data["vat_number"])
