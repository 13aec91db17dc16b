"""ComposerBackend: a deterministic reply writer that needs no model.

It builds the reply from the structured `DraftContext` alone: a restatement of the issue in its
own words (never the customer's text), an apology, resolution steps taken from the closest
resolved ticket (or key sentences of the best knowledge chunk), the policy timeframe, remedies
only from `may_offer`, an invitation and a sign-off. Evidence sentences that carry contact data,
amounts, dates or remedies the evidence/policy does not back are dropped rather than risked.
It is the offline fallback and the baseline the LLM backends are compared against.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.backends.base import DraftContext, Evidence, GenerationRequest
from assistant.prompts import PLACEHOLDER_PATTERN, REDACTION_PATTERN

if TYPE_CHECKING:
    from assistant.settings import Settings

#: Evidence below this similarity is treated as not relevant.
RELEVANCE_THRESHOLD = 0.45

LANGUAGES = ("en", "de", "fr", "es")

# --- fixed phrases --------------------------------------------------------------------------------
# Per language; tone-dependent entries are dicts keyed by tone. German, French and Spanish use the
# polite form (Sie / vous / usted), the norm in customer service there.

PHRASES: dict[str, dict[str, dict[str, str] | str]] = {
    "en": {
        "greeting": {"friendly": "Hello,", "formal": "Dear customer,", "concise": "Hello,"},
        "thanks": {"friendly": "Thank you for getting in touch.", "formal": "Thank you for contacting {business}.", "concise": ""},
        "apology": {
            "friendly": "I'm really sorry about this.",
            "formal": "Please accept our sincere apologies for the inconvenience.",
            "concise": "I'm sorry for the trouble.",
        },
        "apology_soft": {
            "friendly": "I'm sorry for any inconvenience this has caused.",
            "formal": "We apologise for any inconvenience.",
            "concise": "Sorry for any inconvenience.",
        },
        "empathy": {
            "friendly": "I can hear how frustrating this has been, and you have every right to expect better from us.",
            "formal": "I fully understand your frustration, and I want to make sure this is put right.",
            "concise": "I understand your frustration.",
        },
        "explain": {
            "friendly": "I can see why this is confusing, so let me explain how it works.",
            "formal": "Please allow me to explain how this works.",
            "concise": "To explain:",
        },
        "generic_step": "Our team will look into your case and keep you updated.",
        "timeframe": {
            "friendly": "We will resolve this {timeframe}.",
            "formal": "We will resolve this matter {timeframe}.",
            "concise": "We will resolve this {timeframe}.",
        },
        "remedy": "Depending on what we find, we can offer you {offers}.",
        "no_evidence": (
            "I want to be honest with you: I could not find a confirmed answer to this in our information, "
            "so a specialist from our team will look into it and get back to you {timeframe}."
        ),
        "invite": {
            "friendly": "If you have any other questions, just reply to this message; I'm happy to help.",
            "formal": "Should you have any further questions, please do not hesitate to contact us.",
            "concise": "Any other questions? Just reply to this message.",
        },
        "signoff": "Kind regards,\n{business} Support",
        "or": " or ",
    },
    "de": {
        "greeting": {"friendly": "Hallo,", "formal": "Sehr geehrte Kundin, sehr geehrter Kunde,", "concise": "Hallo,"},
        "thanks": {"friendly": "Vielen Dank für Ihre Nachricht.", "formal": "Vielen Dank, dass Sie {business} kontaktiert haben.", "concise": ""},
        "apology": {
            "friendly": "Das tut mir wirklich leid.",
            "formal": "Bitte entschuldigen Sie die Unannehmlichkeiten.",
            "concise": "Das tut mir leid.",
        },
        "apology_soft": {
            "friendly": "Es tut mir leid, falls Ihnen dadurch Unannehmlichkeiten entstanden sind.",
            "formal": "Bitte entschuldigen Sie etwaige Unannehmlichkeiten.",
            "concise": "Entschuldigen Sie die Umstände.",
        },
        "empathy": {
            "friendly": "Ich kann gut verstehen, wie ärgerlich das ist, und Sie dürfen zu Recht mehr von uns erwarten.",
            "formal": "Ich verstehe Ihren Ärger vollkommen und möchte dafür sorgen, dass dies in Ordnung gebracht wird.",
            "concise": "Ich verstehe Ihren Ärger.",
        },
        "explain": {
            "friendly": "Ich verstehe, dass das verwirrend ist, deshalb erkläre ich kurz, wie es funktioniert.",
            "formal": "Gestatten Sie mir, kurz zu erklären, wie dies funktioniert.",
            "concise": "Zur Erklärung:",
        },
        "generic_step": "Unser Team kümmert sich um Ihr Anliegen und hält Sie auf dem Laufenden.",
        "timeframe": {
            "friendly": "Wir werden Ihr Anliegen {timeframe} lösen.",
            "formal": "Wir werden Ihr Anliegen {timeframe} lösen.",
            "concise": "Wir lösen das {timeframe}.",
        },
        "remedy": "Je nach Ergebnis können wir Ihnen {offers} anbieten.",
        "no_evidence": (
            "Ich möchte ehrlich zu Ihnen sein: Ich konnte in unseren Informationen keine gesicherte Antwort "
            "darauf finden, deshalb wird sich eine Fachkraft aus unserem Team {timeframe} darum kümmern "
            "und sich bei Ihnen melden."
        ),
        "invite": {
            "friendly": "Wenn Sie weitere Fragen haben, antworten Sie einfach auf diese Nachricht; ich helfe gern.",
            "formal": "Sollten Sie weitere Fragen haben, zögern Sie bitte nicht, uns zu kontaktieren.",
            "concise": "Weitere Fragen? Antworten Sie einfach auf diese Nachricht.",
        },
        "signoff": "Mit freundlichen Grüßen\n{business} Support",
        "or": " oder ",
    },
    "fr": {
        "greeting": {"friendly": "Bonjour,", "formal": "Madame, Monsieur,", "concise": "Bonjour,"},
        "thanks": {"friendly": "Merci de nous avoir écrit.", "formal": "Nous vous remercions d'avoir contacté {business}.", "concise": ""},
        "apology": {
            "friendly": "Je suis vraiment désolé pour ce désagrément.",
            "formal": "Nous vous prions de bien vouloir nous excuser pour ce désagrément.",
            "concise": "Toutes nos excuses pour ce désagrément.",
        },
        "apology_soft": {
            "friendly": "Je suis désolé pour la gêne occasionnée.",
            "formal": "Nous vous prions de nous excuser pour la gêne occasionnée.",
            "concise": "Désolé pour la gêne occasionnée.",
        },
        "empathy": {
            "friendly": "Je comprends à quel point c'est frustrant, et vous êtes en droit d'attendre mieux de notre part.",
            "formal": "Je comprends parfaitement votre mécontentement et je tiens à ce que la situation soit réglée.",
            "concise": "Je comprends votre frustration.",
        },
        "explain": {
            "friendly": "Je comprends que cela puisse prêter à confusion, alors voici comment cela fonctionne.",
            "formal": "Permettez-moi de vous expliquer comment cela fonctionne.",
            "concise": "Pour précision :",
        },
        "generic_step": "Notre équipe s'occupe de votre demande et vous tiendra informé.",
        "timeframe": {
            "friendly": "Nous résoudrons ce problème {timeframe}.",
            "formal": "Nous résoudrons ce problème {timeframe}.",
            "concise": "Nous réglerons cela {timeframe}.",
        },
        "remedy": "Selon ce que nous constaterons, nous pourrons vous proposer {offers}.",
        "no_evidence": (
            "Je préfère être honnête avec vous : je n'ai pas trouvé de réponse confirmée dans nos informations, "
            "c'est pourquoi un spécialiste de notre équipe examinera votre demande et reviendra vers vous {timeframe}."
        ),
        "invite": {
            "friendly": "Si vous avez d'autres questions, répondez simplement à ce message ; je serai ravi de vous aider.",
            "formal": "Pour toute autre question, n'hésitez pas à nous contacter.",
            "concise": "D'autres questions ? Répondez simplement à ce message.",
        },
        "signoff": "Cordialement,\n{business} Support",
        "or": " ou ",
    },
    "es": {
        "greeting": {"friendly": "Hola:", "formal": "Estimado/a cliente:", "concise": "Hola:"},
        "thanks": {"friendly": "Gracias por escribirnos.", "formal": "Gracias por ponerse en contacto con {business}.", "concise": ""},
        "apology": {
            "friendly": "Siento mucho lo ocurrido.",
            "formal": "Le pedimos disculpas por las molestias.",
            "concise": "Disculpe las molestias.",
        },
        "apology_soft": {
            "friendly": "Siento las molestias que esto le haya podido causar.",
            "formal": "Le pedimos disculpas por las posibles molestias.",
            "concise": "Disculpe las molestias.",
        },
        "empathy": {
            "friendly": "Entiendo lo frustrante que ha sido esto, y tiene todo el derecho a esperar más de nosotros.",
            "formal": "Comprendo perfectamente su malestar y quiero asegurarme de que esto se solucione.",
            "concise": "Entiendo su frustración.",
        },
        "explain": {
            "friendly": "Entiendo que esto pueda resultar confuso, así que le explico cómo funciona.",
            "formal": "Permítame explicarle cómo funciona.",
            "concise": "Para aclararlo:",
        },
        "generic_step": "Nuestro equipo se ocupará de su caso y le mantendrá informado.",
        "timeframe": {
            "friendly": "Resolveremos esto {timeframe}.",
            "formal": "Resolveremos este asunto {timeframe}.",
            "concise": "Lo resolveremos {timeframe}.",
        },
        "remedy": "Según lo que encontremos, podemos ofrecerle {offers}.",
        "no_evidence": (
            "Quiero ser sincero con usted: no he encontrado una respuesta confirmada en nuestra información, "
            "por eso un especialista de nuestro equipo revisará su caso y le responderá {timeframe}."
        ),
        "invite": {
            "friendly": "Si tiene cualquier otra pregunta, responda a este mensaje; estaré encantado de ayudarle.",
            "formal": "Si tiene alguna otra pregunta, no dude en ponerse en contacto con nosotros.",
            "concise": "¿Alguna otra pregunta? Responda a este mensaje.",
        },
        "signoff": "Saludos cordiales,\n{business} Support",
        "or": " o ",
    },
}

# The remedies worth proposing up front, in the reply language. Others in may_offer (discount
# codes, gift cards, labels) are left to the human agent's judgement.
REMEDY_WORDS: dict[str, dict[str, str]] = {
    "en": {"replacement": "a replacement", "refund": "a refund", "exchange": "an exchange", "repair": "a free repair"},
    "de": {"replacement": "einen Ersatz", "refund": "eine Rückerstattung", "exchange": "einen Umtausch", "repair": "eine kostenlose Reparatur"},
    "fr": {"replacement": "un remplacement", "refund": "un remboursement", "exchange": "un échange", "repair": "une réparation gratuite"},
    "es": {"replacement": "un reemplazo", "refund": "un reembolso", "exchange": "un cambio", "repair": "una reparación gratuita"},
}
QUESTION_CATEGORIES = frozenset({"general", "product_sizing", "privacy_data"})
REMEDY_CATEGORIES = frozenset({"damaged_defective", "lost_parcel", "returns_exchanges", "warranty_repairs"})

# Acknowledgements per category. Slots: {item} the product ("your Skerry Rain Shell"),
# {order_from}/{order_for} (" from order #4521" or ""), {order} ("your order #4521"),
# {parcel}, {defect} and {about}; only detected entities fill them, never customer text.
ACKS: dict[str, dict[str, str]] = {
    "en": {
        "damaged_defective": "I understand that {item}{order_from} arrived {defect}.",
        "wrong_item": "I understand that you received the wrong item{order_for}.",
        "shipping_delivery": "I understand that {order_or_parcel} has not reached you yet.",
        "lost_parcel": "I understand that {parcel}{order_for} seems to have gone missing.",
        "returns_exchanges": "I understand that you would like to return or exchange {item}{order_from}.",
        "refunds": "I understand that you are still waiting for your refund{order_for}.",
        "order_changes": "I understand that you would like to change or cancel {order}.",
        "payments_billing": "I understand that something went wrong with a payment{order_for}.",
        "account_access": "I understand that you are having trouble getting into your account.",
        "product_sizing": "I understand that you would like some advice on sizing and fit{about}.",
        "warranty_repairs": "I understand that {item} {has} developed a problem and you would like us to look at it.",
        "discounts_promotions": "I understand that a discount code or gift card did not work as expected.",
        "privacy_data": "I understand that you have a request about your personal data or marketing preferences.",
        "feedback_complaint": "I understand that you are unhappy with your experience with us{order_for}.",
        "general": "I understand that you have a question{about}.",
    },
    "de": {
        "damaged_defective": "Ich verstehe, dass {item}{order_from} {defect} bei Ihnen angekommen ist.",
        "wrong_item": "Ich verstehe, dass Sie{order_for} einen falschen Artikel erhalten haben.",
        "shipping_delivery": "Ich verstehe, dass {order_or_parcel} noch nicht bei Ihnen angekommen ist.",
        "lost_parcel": "Ich verstehe, dass {parcel}{order_for} offenbar verloren gegangen ist.",
        "returns_exchanges": "Ich verstehe, dass Sie {item_acc}{order_from} zurückgeben oder umtauschen möchten.",
        "refunds": "Ich verstehe, dass Sie{order_for} noch auf Ihre Rückerstattung warten.",
        "order_changes": "Ich verstehe, dass Sie {order} ändern oder stornieren möchten.",
        "payments_billing": "Ich verstehe, dass bei einer Zahlung{order_for} etwas schiefgelaufen ist.",
        "account_access": "Ich verstehe, dass Sie Probleme haben, auf Ihr Kundenkonto zuzugreifen.",
        "product_sizing": "Ich verstehe, dass Sie eine Frage zu Größe und Passform{about} haben.",
        "warranty_repairs": "Ich verstehe, dass {item} einen Mangel aufweist und Sie möchten, dass wir uns das ansehen.",
        "discounts_promotions": "Ich verstehe, dass ein Rabattcode oder Gutschein nicht wie erwartet funktioniert hat.",
        "privacy_data": "Ich verstehe, dass Sie ein Anliegen zu Ihren persönlichen Daten oder Newsletter-Einstellungen haben.",
        "feedback_complaint": "Ich verstehe, dass Sie mit Ihrer Erfahrung bei uns unzufrieden sind.",
        "general": "Ich verstehe, dass Sie eine Frage{about} haben.",
    },
    "fr": {
        "damaged_defective": "Je comprends que {item}{order_from} est arrivé {defect}.",
        "wrong_item": "Je comprends que vous avez reçu un article qui ne correspond pas à votre commande{order_ref}.",
        "shipping_delivery": "Je comprends que vous n'avez pas encore reçu {order_or_parcel}.",
        "lost_parcel": "Je comprends que {parcel}{order_for} semble avoir été perdu.",
        "returns_exchanges": "Je comprends que vous souhaitez retourner ou échanger {item}{order_from}.",
        "refunds": "Je comprends que vous attendez toujours votre remboursement{order_for}.",
        "order_changes": "Je comprends que vous souhaitez modifier ou annuler {order}.",
        "payments_billing": "Je comprends qu'un problème est survenu lors d'un paiement{order_for}.",
        "account_access": "Je comprends que vous avez des difficultés à accéder à votre compte.",
        "product_sizing": "Je comprends que vous avez une question sur la taille et la coupe{about}.",
        "warranty_repairs": "Je comprends que {item} présente un défaut et que vous souhaitez que nous l'examinions.",
        "discounts_promotions": "Je comprends qu'un code de réduction ou une carte cadeau n'a pas fonctionné comme prévu.",
        "privacy_data": "Je comprends que vous avez une demande concernant vos données personnelles ou vos préférences marketing.",
        "feedback_complaint": "Je comprends que vous n'êtes pas satisfait de votre expérience avec nous.",
        "general": "Je comprends que vous avez une question{about}.",
    },
    "es": {
        "damaged_defective": "Entiendo que {item}{order_from} llegó {defect}.",
        "wrong_item": "Entiendo que recibió un artículo que no corresponde a su pedido{order_ref}.",
        "shipping_delivery": "Entiendo que todavía no ha recibido {order_or_parcel}.",
        "lost_parcel": "Entiendo que {parcel}{order_for} parece haberse perdido.",
        "returns_exchanges": "Entiendo que desea devolver o cambiar {item}{order_from}.",
        "refunds": "Entiendo que todavía está esperando su reembolso{order_for}.",
        "order_changes": "Entiendo que desea modificar o cancelar {order}.",
        "payments_billing": "Entiendo que hubo un problema con un pago{order_for}.",
        "account_access": "Entiendo que tiene problemas para acceder a su cuenta.",
        "product_sizing": "Entiendo que tiene una pregunta sobre la talla y el ajuste{about}.",
        "warranty_repairs": "Entiendo que {item} presenta un defecto y desea que lo revisemos.",
        "discounts_promotions": "Entiendo que un código de descuento o una tarjeta regalo no funcionó como esperaba.",
        "privacy_data": "Entiendo que tiene una solicitud sobre sus datos personales o sus preferencias de marketing.",
        "feedback_complaint": "Entiendo que no está satisfecho con su experiencia con nosotros.",
        "general": "Entiendo que tiene una pregunta{about}.",
    },
}

# Slot fillers per language; {p} is a product name from the evidence, {n} an order number.
SLOTS: dict[str, dict[str, str]] = {
    "en": {
        "item_product": "your {p}", "item_noun": "your {noun}", "item": "your item",
        "item_acc_product": "your {p}", "item_acc": "your item",
        "order_from": " from order #{n}", "order_for": " for order #{n}", "order_ref": " #{n}",
        "order_n": "your order #{n}", "order": "your order", "parcel": "your parcel",
        "about_product": " about the {p}", "about_order": " about order #{n}",
    },
    "de": {
        "item_product": "Ihr Artikel „{p}“", "item_noun": "Ihr Artikel", "item": "Ihr Artikel",
        "item_acc_product": "Ihren Artikel „{p}“", "item_acc": "Ihren Artikel",
        "order_from": " aus Bestellung #{n}", "order_for": " zur Bestellung #{n}", "order_ref": " #{n}",
        "order_n": "Ihre Bestellung #{n}", "order": "Ihre Bestellung", "parcel": "Ihr Paket",
        "about_product": " zum Artikel „{p}“", "about_order": " zu Ihrer Bestellung #{n}",
    },
    "fr": {
        "item_product": "votre article « {p} »", "item_noun": "votre article", "item": "votre article",
        "item_acc_product": "votre article « {p} »", "item_acc": "votre article",
        "order_from": " de la commande #{n}", "order_for": " pour la commande #{n}", "order_ref": " #{n}",
        "order_n": "votre commande #{n}", "order": "votre commande", "parcel": "votre colis",
        "about_product": " sur l'article « {p} »", "about_order": " sur votre commande #{n}",
    },
    "es": {
        "item_product": "su artículo «{p}»", "item_noun": "su artículo", "item": "su artículo",
        "item_acc_product": "su artículo «{p}»", "item_acc": "su artículo",
        "order_from": " del pedido #{n}", "order_for": " del pedido #{n}", "order_ref": " #{n}",
        "order_n": "su pedido #{n}", "order": "su pedido", "parcel": "su paquete",
        "about_product": " sobre el artículo «{p}»", "about_order": " sobre su pedido #{n}",
    },
}

# What the customer says is wrong with an item -> the words the acknowledgement uses.
DEFECTS: list[tuple[str, re.Pattern[str]]] = [
    ("wrong", re.compile(r"\b(wrong|incorrect|not what i ordered|falsch\w*|mauvais\w*|erron\w*|equivocad\w*|incorrect\w*)\b", re.I)),
    ("torn", re.compile(r"\b(tear|torn|ripped|rip|riss|gerissen|eingerissen|déchir\w*|rasgad\w*|rasgón|roto)\b", re.I)),
    ("hole", re.compile(r"\b(hole|holes|loch|trou|agujero)\b", re.I)),
    ("stained", re.compile(r"\b(stain\w*|fleck\w*|tach\w*|mancha\w*)\b", re.I)),
    ("broken", re.compile(r"\b(broken|broke|snapped|kaputt|zerbrochen|cassé\w*)\b", re.I)),
    ("faulty", re.compile(r"\b(faulty|defective|defect|not working|doesn'?t work|defekt\w*|fehlerhaft\w*|défectueu\w*|defectuos\w*)\b", re.I)),
]
DEFECT_WORDS: dict[str, dict[str, str]] = {
    "en": {"torn": "torn", "hole": "with a hole", "stained": "stained", "broken": "broken", "faulty": "faulty", "damaged": "damaged"},
    "de": {"torn": "eingerissen", "hole": "mit einem Loch", "stained": "verschmutzt", "broken": "kaputt", "faulty": "fehlerhaft", "damaged": "beschädigt"},
    "fr": {"torn": "déchiré", "hole": "troué", "stained": "taché", "broken": "cassé", "faulty": "défectueux", "damaged": "endommagé"},
    "es": {"torn": "rasgado", "hole": "con un agujero", "stained": "manchado", "broken": "roto", "faulty": "defectuoso", "damaged": "dañado"},
}

# Generic product nouns, for "your jacket" when no product name from the evidence matches.
NOUNS = (
    "base layer", "rain shell", "jacket", "parka", "vest", "fleece", "hoodie", "coat", "trousers", "pants",
    "shorts", "leggings", "boots", "shoes", "backpack", "rucksack", "pack", "gloves", "beanie", "hat",
    "socks", "shirt",
)

PLURAL_NOUNS = frozenset({"trousers", "pants", "shorts", "leggings", "boots", "shoes", "gloves", "socks"})

# Category vocabulary (from the SLA keywords, plus a few translations) for ranking evidence sentences.
CATEGORY_TERMS: dict[str, tuple[str, ...]] = {
    "shipping_delivery": ("parcel", "package", "delivery", "tracking", "shipping", "courier", "late", "dispatch", "customs", "carrier"),
    "lost_parcel": ("lost", "missing", "stolen", "investigation", "delivered", "neighbour", "carrier", "claim"),
    "damaged_defective": ("damaged", "broken", "defective", "torn", "faulty", "stained", "hole", "wrong", "photo", "replacement"),
    "returns_exchanges": ("return", "exchange", "label", "portal", "unworn", "tags", "days"),
    "refunds": ("refund", "refunded", "credited", "bank", "payment", "days"),
    "order_changes": ("cancel", "cancellation", "change", "address", "hour", "dispatched"),
    "payments_billing": ("payment", "charged", "charge", "declined", "invoice", "vat", "card", "paypal", "klarna"),
    "account_access": ("account", "password", "login", "locked", "reset", "email", "link"),
    "product_sizing": ("size", "sizing", "fit", "measurements", "chart", "length", "regular", "relaxed"),
    "warranty_repairs": ("warranty", "repair", "guarantee", "zip", "seam", "sole", "defect", "wear", "normal"),
    "discounts_promotions": ("discount", "code", "coupon", "promo", "voucher", "sale", "gift", "price"),
    "privacy_data": ("privacy", "data", "delete", "deletion", "gdpr", "newsletter", "unsubscribe", "marketing"),
    "feedback_complaint": ("complaint", "feedback", "review", "lead"),
    "general": ("stock", "restock", "store", "product"),
}

# Words that signal a remedy; a sentence naming a remedy outside may_offer is dropped.
REMEDY_PATTERNS: dict[str, re.Pattern[str]] = {
    "refund": re.compile(r"\b(refund\w*|money back|reimburs\w*|rückerstatt\w*|erstatt\w*|rembours\w*|reembols\w*)\b", re.I),
    "replacement": re.compile(r"\b(replacement|replace|new one|send (you )?another|ersatz\w*|remplacement|reemplaz\w*)\b", re.I),
    "discount_code": re.compile(r"\b(discount|voucher|coupon|promo code|\d+\s?% off|rabatt\w*|réduction|descuento)\b", re.I),
    "gift_card": re.compile(r"\b(gift card|store credit|gutschein\w*|carte cadeau|tarjeta regalo)\b", re.I),
    "free_shipping": re.compile(r"\b(free (shipping|delivery)|kostenlose(r|n)? versand|livraison gratuite|envío gratuito)\b", re.I),
    "prepaid_label": re.compile(r"\b(prepaid|pre-paid|return label|rücksendeetikett|étiquette de retour|etiqueta de devolución)\b", re.I),
    "exchange": re.compile(r"\b(exchange|swap|umtausch\w*|échange\w*|cambio)\b", re.I),
    "repair": re.compile(r"\b(repair\w*|reparatur\w*|réparation|reparaci\w*)\b", re.I),
}

# --- sentence filters -----------------------------------------------------------------------------

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"\bhttps?://\S+|\bwww\.\S+|\b[\w-]+\.(?:com|net|org|example|de|fr|es|io|co\.uk|shop)(?:/\S*)?\b", re.I)
_PHONE = re.compile(r"(?<![\w#])\+?\d[\d\s().-]{6,}\d\b")
_AMOUNT = re.compile(r"[€$£]\s?\d[\d.,]*|\b\d[\d.,]*\s?(?:€|eur|euros?|usd|gbp|dollars?|pounds?|%)", re.I)
_DATE = re.compile(
    r"\b\d{1,2}[./-]\d{1,2}(?:[./-]\d{2,4})?\b|\b\d{4}-\d{2}-\d{2}\b|"
    r"\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:tember)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?\s+\d{1,2}\b|\b\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?"
    r"(?:january|february|march|april|may|june|july|august|september|october|november|december)\b|"
    r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|tomorrow|tonight)\b",
    re.I,
)
_NUMBER = re.compile(r"\d+")
# "by Friday", "next Monday", "tomorrow": a delivery or action date, which no evidence can back
# for this customer (knowledge and business hours mention weekdays only as opening times).
_DEADLINE = re.compile(
    r"\b(?:by|on|until|before|next|this|coming)\s+(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b|"
    r"\b(?:tomorrow|tonight|today|end of (?:the )?(?:day|week|month))\b",
    re.I,
)
_GREETING = re.compile(
    r"^(hi|hello|hey|dear|good (morning|afternoon|evening)|greetings|hallo|guten tag|sehr geehrte|bonjour|"
    r"madame|hola|estimad)\b|^(thanks?|thank you)\b.*\b(for|so much)\b|^(vielen )?dank|^merci\b|^gracias\b",
    re.I,
)
_SIGNOFF = re.compile(
    r"^((kind|best|warm|many)\s+)?regards\b|^(yours )?sincerely|^cheers\b|^best\b|^mit freundlichen|^viele grüße|"
    r"^cordialement|^saludos|^atentamente",
    re.I,
)
_APOLOGY = re.compile(r"\b(sorry|apolog\w*|entschuldig\w*|tut (mir|uns) leid|désolé\w*|excuse\w*|lo siento|disculp\w*)\b", re.I)
_INVITE = re.compile(
    r"\b(let (me|us) know|any (other|further|more) questions|(don't|do not) hesitate|feel free|happy to help|"
    r"here to (help|assist)|reach out (to us )?(again|anytime))\b",
    re.I,
)
# "I have issued a refund" describes what was done for another customer; repeating it would claim
# an action nobody took for this one.
_PAST_ACTION = re.compile(
    r"\b(i|we)\s*('ve|’ve| have| had)\s+(already\s+|now\s+|just\s+)?(\w+ed|sent|made|done|put|set|spoken|"
    r"given|taken|found|been)\b|\b(has|have) been\b|\b(i|we) (checked|issued|refunded|sent|processed|"
    r"arranged|contacted|cancell?ed|updated|escalated|forwarded|applied|created|looked)\b|"
    r"\b(habe ich|haben wir|wurde|j'ai|nous avons|hemos)\b",
    re.I,
)
# Sentences that correct a common misunderstanding; they get a kind "let me explain" frame.
_CORRECTION = re.compile(
    r"\b(normal (wear|for)|is normal|are normal|not a (warranty )?(defect|fault)|not covered|isn't covered|"
    r"is expected|does not mean|doesn't mean|rather than a defect|kein(en)? mangel|ganz normal|"
    r"pas un défaut|est normal|no es un defecto|es normal)\b",
    re.I,
)
_ORDER = [
    re.compile(r"#\s?(\d{3,12})\b"),
    re.compile(
        r"\b(?:order|bestellung|bestellnummer|auftrag|commande|pedido)\s*(?:(?:number|no\.?|nr\.?|nummer|"
        r"n°|numéro|número|num\.?|id|#|:)\s*)*#?\s*(\d{3,12})\b",
        re.I,
    ),
]
_ANGER = re.compile(
    r"\b(unacceptable|ridiculous|furious|angry|outrageous|outraged|terrible|worst|disgusting|scam|fed up|"
    r"livid|useless|awful|joke|appalling|unverschämt|frechheit|wütend|inakzeptabel|sauer|inadmissible|"
    r"furieux|furieuse|honteux|inacceptable|inaceptable|furioso|furiosa|vergüenza|indignante)\b",
    re.I,
)


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


_STOPWORDS: dict[str, frozenset[str]] = {
    "en": _wordset("the and you your our for with that this is are was will can have not we please it of to in on"),
    "de": _wordset("der die das und sie ihr ihre wir ist sind nicht mit für auf bitte ein eine den dem zu von"),
    "fr": _wordset("le la les et vous votre nous est sont pas avec pour sur une des du au ce qui que"),
    "es": _wordset("el la los las y usted su nosotros es son no con para por una del al que lo se"),
}
_WORD = re.compile(r"[a-zäöüßéèêàâáíóúñçœ]+", re.I)
_CAPITALISED_RUN = re.compile(r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+){1,3}\b")
_NOT_PRODUCT_WORDS = _wordset(
    "the a an our your this that these if we you please hello hi dear kind best regards price fit products "
    "support team customer returns refunds policy care cleaning monday friday phone number order account "
    "email service website address name code card gift"
)


def _detect_language(sentence: str) -> str | None:
    words = [w.lower() for w in _WORD.findall(sentence)]
    counts = {lang: sum(w in stop for w in words) for lang, stop in _STOPWORDS.items()}
    best = max(counts, key=lambda lang: counts[lang])
    return best if counts[best] > 0 and list(counts.values()).count(counts[best]) == 1 else None


def _terms(text: str) -> set[str]:
    """Content words, crudely stemmed, for overlap scoring."""
    out = set()
    for word in _WORD.findall(text.lower()):
        if len(word) < 3 or any(word in stop for stop in _STOPWORDS.values()):
            continue
        out.add(re.sub(r"(ing|ed|es|s|en|er|e)$", "", word) if len(word) > 5 else word)
    return out


_LIST_ITEM = re.compile(r"^([-*•]|\d+[.)])\s+")


def split_sentences(text: str, *, prose_only: bool = False) -> list[str]:
    """Sentences of an evidence text, with markdown headings, bullets and emphasis removed.

    `prose_only` also drops list items: in a resolved ticket they are click-by-click steps for
    that customer's situation (often another shop's UI), which do not transfer.
    """
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "|", ">")) or (prose_only and _LIST_ITEM.match(line)):
            continue
        line = _LIST_ITEM.sub("", line)
        line = re.sub(r"\*\*|__|`", "", line)
        out.extend(s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[\"“(¿¡]?[A-ZÄÖÜÉÀÁÍÓÚÑ0-9])", line) if s.strip())
    return out


# --- entities -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entities:
    order: str | None  # digits only
    product: str | None  # canonical name from the evidence
    noun: str | None  # generic noun such as "jacket"
    defect: str  # key of DEFECT_WORDS, or "wrong"
    angry: bool
    evidence_products: frozenset[str]  # all product-like names in the evidence


def _product_names(ctx: DraftContext) -> set[str]:
    """Product-like names the evidence states: ticket `product` fields and capitalised runs in knowledge."""
    names: set[str] = set()
    for ticket in ctx.tickets:
        product = ticket.metadata.get("product")
        if isinstance(product, str) and len(product.split()) >= 2:
            names.add(product)
    business = ctx.business.get("name", "")
    for chunk in ctx.knowledge:
        text = PLACEHOLDER_PATTERN.sub(" ", f"{chunk.title}\n{chunk.text}")
        for match in _CAPITALISED_RUN.finditer(text):
            words = match.group(0).split()
            while words and words[0].lower() in _NOT_PRODUCT_WORDS:
                words = words[1:]
            name = " ".join(words)
            if len(words) >= 2 and not any(w.lower() in _NOT_PRODUCT_WORDS for w in words) and name not in business:
                names.add(name)
    return names


def _entities(ctx: DraftContext) -> _Entities:
    message = ctx.message
    lower = message.lower()
    order = next((m.group(1) for pattern in _ORDER if (m := pattern.search(message))), None)
    names = _product_names(ctx)
    mentioned = [n for n in names if re.search(rf"\b{re.escape(n.lower())}\b", lower)]
    product = max(mentioned, key=lambda n: (len(n), n)) if mentioned else None
    noun = next((n for n in sorted(NOUNS, key=lambda n: lower.find(n)) if re.search(rf"\b{n}", lower)), None)
    if product is None and noun:
        # "my Skerry jacket": a product line word from the evidence next to a generic noun.
        lines = sorted({n.split()[0] for n in names})
        line = next((w for w in lines if re.search(rf"\b{re.escape(w.lower())}\s+{noun}", lower)), None)
        product = f"{line} {noun}" if line else None
    defect = next((key for key, pattern in DEFECTS if pattern.search(message)), "damaged")
    shouting = sum(1 for w in re.findall(r"\b[A-ZÄÖÜ]{3,}\b", message) if w not in ("DWR", "GDPR", "VAT", "EUR"))
    angry = bool(_ANGER.search(message)) or message.count("!") >= 3 or shouting >= 3
    return _Entities(order, product, noun, defect, angry, frozenset(names))


# --- timeframe ------------------------------------------------------------------------------------

_TIMEFRAME = re.compile(r"^within (\d+)(?: to (\d+))? (business )?(day|hour|week)s?$", re.I)
_UNITS: dict[str, dict[tuple[str, bool, bool], str]] = {
    # (unit, business, plural) -> word
    "de": {("day", True, False): "Werktag", ("day", True, True): "Werktagen", ("hour", True, False): "Geschäftsstunde",
           ("hour", True, True): "Geschäftsstunden", ("day", False, False): "Tag", ("day", False, True): "Tagen",
           ("hour", False, False): "Stunde", ("hour", False, True): "Stunden", ("week", False, False): "Woche",
           ("week", False, True): "Wochen", ("week", True, False): "Woche", ("week", True, True): "Wochen"},
    "fr": {("day", True, False): "jour ouvré", ("day", True, True): "jours ouvrés", ("hour", True, False): "heure ouvrée",
           ("hour", True, True): "heures ouvrées", ("day", False, False): "jour", ("day", False, True): "jours",
           ("hour", False, False): "heure", ("hour", False, True): "heures", ("week", False, False): "semaine",
           ("week", False, True): "semaines", ("week", True, False): "semaine", ("week", True, True): "semaines"},
    "es": {("day", True, False): "día hábil", ("day", True, True): "días hábiles", ("hour", True, False): "hora hábil",
           ("hour", True, True): "horas hábiles", ("day", False, False): "día", ("day", False, True): "días",
           ("hour", False, False): "hora", ("hour", False, True): "horas", ("week", False, False): "semana",
           ("week", False, True): "semanas", ("week", True, False): "semana", ("week", True, True): "semanas"},
}
_WITHIN = {"de": ("innerhalb von {a}", "{a} bis {b}"), "fr": ("dans un délai de {a}", "{a} à {b}"), "es": ("en un plazo de {a}", "{a} a {b}")}


def localize_timeframe(text: str, language: str) -> str:
    """The policy phrase in the reply language ("within 3 business days" -> "innerhalb von 3 Werktagen").

    English, and any phrase that is not of the form "within N [to M] [business] days/hours/weeks",
    is returned verbatim, so the policy wording is never altered beyond a faithful translation.
    """
    match = _TIMEFRAME.match(text.strip())
    if language not in _UNITS or not match:
        return text
    low, high, business, unit = match.group(1), match.group(2), bool(match.group(3)), match.group(4).lower()
    plural = (high or low) != "1"
    word = _UNITS[language][(unit, business, plural)]
    within, span = _WITHIN[language]
    amount = span.format(a=low, b=high) if high else low
    return within.format(a=f"{amount} {word}")


def timeframe_phrase(text: str, language: str) -> str:
    """How a reply states the policy timeframe: translated, with the exact policy wording kept.

    The policy phrase is the contract the checks verify, so a translated reply also carries it
    verbatim: "innerhalb von 3 Werktagen (within 3 business days)".
    """
    local = localize_timeframe(text, language)
    return local if local == text else f"{local} ({text})"


# --- composing ------------------------------------------------------------------------------------


def _phrase(lang: str, key: str, tone: str) -> str:
    value = PHRASES[lang][key]
    return value.get(tone, value["friendly"]) if isinstance(value, dict) else value


def _acknowledgement(ctx: DraftContext, lang: str, ent: _Entities) -> str:
    slots = SLOTS[lang]
    n = ent.order
    fill = {
        "item": slots["item_product"].format(p=ent.product) if ent.product
        else slots["item_noun"].format(noun=ent.noun) if ent.noun else slots["item"],
        "item_acc": slots["item_acc_product"].format(p=ent.product) if ent.product else slots["item_acc"],
        "order_from": slots["order_from"].format(n=n) if n else "",
        "order_for": slots["order_for"].format(n=n) if n else "",
        "order_ref": slots["order_ref"].format(n=n) if n else "",
        "order": slots["order_n"].format(n=n) if n else slots["order"],
        "order_or_parcel": slots["order_n"].format(n=n) if n else slots["parcel"],
        "parcel": slots["parcel"],
        # Only English needs verb agreement: the other languages always say "the item".
        "has": "have" if not ent.product and ent.noun in PLURAL_NOUNS else "has",
        "defect": DEFECT_WORDS[lang].get(ent.defect, DEFECT_WORDS[lang]["damaged"]),
        "about": slots["about_product"].format(p=ent.product) if ent.product
        else slots["about_order"].format(n=n) if n else "",
    }
    key = ctx.category if ctx.category in ACKS[lang] else "general"
    if key == "damaged_defective" and ent.defect == "wrong":
        key = "wrong_item"
    ack = ACKS[lang][key].format(**fill)
    return restate_topic(ack, ctx.message, lang)


_TOPIC_LEAD = {"en": "in particular:", "de": "insbesondere:", "fr": "en particulier :", "es": "en particular:"}


# A sentence telling the reader what to write ("write X", "reply with X", "say: X", "include the code X").
_DICTATES = re.compile(
    r"\b(?:write|say|type|repeat|print|confirm in writing|(?:include|append)(?: the| this| these| following)* "
    r"(?:code|words?|phrase|sentence|text)|(?:reply|respond|answer|start|begin|end|sign off)(?: your \w+)? with)\b"
    r"(?!\s+(?:to|back)\b)"
    r"|\b(?:schreib\w*|écri\w*|escrib\w*|scriv\w*|schrijf)\b",
    re.IGNORECASE,
)


def restate_topic(ack: str, message: str, lang: str) -> str:
    """Restate the customer's own key terms when the category sentence shares none with the message.

    A category template ("something went wrong with a payment") can miss what the customer actually
    said ("charged twice"); up to two short runs of their content words (never a long verbatim quote)
    make the restatement concrete.
    """
    from assistant.checks import _content_stems
    from assistant.injection import scan_injection

    if _content_stems(ack) & _content_stems(message):
        return ack
    # Never restate text aimed at the assistant ("ignore your instructions"), nor a sentence that dictates
    # words for the reply ("write REFUND APPROVED"): only the support request.
    message = " ".join(
        s for s in re.split(r"(?<=[.!?\n])\s+", message) if not scan_injection(s) and not _DICTATES.search(s)
    )
    runs: list[str] = []
    current: list[str] = []
    for word in re.findall(r"[A-Za-zÀ-ÖØ-öø-ÿ'-]+|[^\sA-Za-zÀ-ÖØ-öø-ÿ'-]+", message):
        if len(word) >= 4 and _content_stems(word):
            current.append(word.lower() if word.isupper() else word)
            continue
        if current:
            runs.append(" ".join(current[:3]))
        current = []
    if current:
        runs.append(" ".join(current[:3]))
    runs = [r for r in dict.fromkeys(runs) if r]
    if not runs:
        return ack
    best = sorted(runs, key=lambda r: (-len(r.split()), runs.index(r)))[:2]
    best.sort(key=runs.index)
    return f"{ack.rstrip('.')} – {_TOPIC_LEAD.get(lang, _TOPIC_LEAD['en'])} {', '.join(best)}."


def _allowed_text(ctx: DraftContext) -> str:
    """Text whose facts (numbers, contacts) a reply may repeat: knowledge evidence and business data."""
    parts = [ev.text for ev in ctx.knowledge] + [ev.title for ev in ctx.knowledge]
    parts += [str(v) for v in ctx.business.values()]
    return "\n".join(parts).lower()


def _unbacked_facts(sentence: str, allowed: str, timeframe: str) -> bool:
    """True when the sentence states a contact, amount, date or number the evidence does not hold."""
    if _DEADLINE.search(sentence):
        return True
    for pattern in (_EMAIL, _URL, _PHONE, _AMOUNT, _DATE):
        for match in pattern.finditer(sentence):
            if match.group(0).lower().strip(" .,") not in allowed:
                return True
    return any(num not in allowed and num not in timeframe for num in _NUMBER.findall(sentence))


def _names_other_remedy(sentence: str, may_offer: list[str]) -> bool:
    return any(key not in may_offer and pattern.search(sentence) for key, pattern in REMEDY_PATTERNS.items())


_ORDER_PLACEHOLDER = re.compile(
    r"(?:your |the )?(?:order(?: number| no\.?| id)?\s*)?\{\{\s*order (?:number|id)\s*\}\}", re.I
)
_TRACKING_PLACEHOLDER = re.compile(r"(?:your |the )?(?:tracking number\s*)?\{\{\s*tracking number\s*\}\}", re.I)


def _without_placeholders(sentence: str) -> str | None:
    """Replace placeholders that have a neutral wording; None if any other placeholder (or a
    redaction marker such as [NAME]) remains."""
    if REDACTION_PATTERN.search(sentence):
        return None
    sentence = _ORDER_PLACEHOLDER.sub("your order", sentence)
    sentence = _TRACKING_PLACEHOLDER.sub("your tracking number", sentence)
    return None if PLACEHOLDER_PATTERN.search(sentence) or "{{" in sentence else sentence


def _language_ok(sentence: str, lang: str) -> bool:
    detected = _detect_language(sentence)
    return detected == lang or (detected is None and lang == "en")


# Sentences of another customer's ticket that only fit that customer: feelings and observations
# ("I can see your order was placed on Friday"), timing promises (ours is the policy timeframe),
# and list lead-ins whose list would be cut off.
_TICKET_ONLY = re.compile(
    r"^(i|we) (understand|know|can (imagine|see|understand)|appreciate|see)\b|^that'?s\b|^that really\b|"
    r"\bi can see\b|\bfrustrat\w*|\bdisappoint\w*|\bannoying\b|\bworr(y|ied)\b|\bmust be\b|"
    r"\bwithin\b|\bsame day\b|\bnext (business )?day\b|\bright now\b|\bshortly\b|\bin der regel\b|"
    r"\binnerhalb\b|\bdans un délai\b|\ben un plazo\b|\bthis (morning|afternoon|evening|week)\b|"
    r"\bthese steps\b|\bthe following\b|\bfolgende\w*|\bsuivant\w*|\bsiguiente\w*|:\s*$",
    re.I,
)
# Guidance written for agents (imported playbooks) rather than for customers.
_AGENT_FACING = re.compile(
    r"\bthe customer\b|\bcustomer's\b|\byour own words\b|copy/paste|\bend the conversation\b|"
    r"\bthe agent\b|\([A-D]\)",
    re.I,
)
_INNER_CAPITAL = re.compile(r"(?<=[\w,;:)] )[A-ZÄÖÜ][\w'-]+")


def _ticket_sentence_ok(sentence: str, ctx: DraftContext, ent: _Entities, allowed: str, lang: str) -> bool:
    """Whether a sentence from another customer's resolved ticket may be reused for this one."""
    words = sentence.split()
    if not 4 <= len(words) <= 45 or not sentence.endswith((".", "!")):
        return False  # fragments and sign-off lines ("The Fernway Support Team") have no full stop
    patterns = (_GREETING, _SIGNOFF, _APOLOGY, _INVITE, _PAST_ACTION, _TICKET_ONLY, _AGENT_FACING)
    if any(p.search(sentence) for p in patterns) or re.search(r"\d", sentence):
        return False  # numbers in a ticket are that customer's amounts, dates, sizes or order
    if _unbacked_facts(sentence, allowed, ctx.timeframe.text) or _names_other_remedy(sentence, ctx.may_offer):
        return False
    message = ctx.message.lower()
    lower = sentence.lower()
    # Another customer's product, item, country or carrier must not slip into this reply.
    if any(name.lower() in lower and name.lower() not in message for name in ent.evidence_products):
        return False
    if any(re.search(rf"\b{noun}", lower) and noun not in message for noun in NOUNS):
        return False
    if lang == "de":
        return True  # German capitalises every noun, so capitals say nothing about names there
    known = allowed + "\n" + message
    return all(word.lower() in known for word in _INNER_CAPITAL.findall(sentence) if word != "I")


def _ticket_steps(ticket: Evidence, ctx: DraftContext, lang: str, ent: _Entities, limit: int) -> list[str]:
    """Action sentences of a resolved ticket's reply that are safe to reuse for this customer."""
    allowed = _allowed_text(ctx)
    steps: list[str] = []
    for raw in split_sentences(ticket.reply or "", prose_only=True):
        sentence = _without_placeholders(raw)
        if sentence and _ticket_sentence_ok(sentence, ctx, ent, allowed, lang) and _language_ok(sentence, lang):
            steps.append(sentence)
            if len(steps) >= limit:
                break
    return steps


def _knowledge_facts(chunks: list[Evidence], ctx: DraftContext, lang: str, limit: int) -> list[str]:
    """The sentences of the relevant knowledge chunks that best match the message and category."""
    if limit <= 0:
        return []
    issue = _terms(" ".join(CATEGORY_TERMS.get(ctx.category, ())))
    asked = _terms(ctx.message)
    scored: list[tuple[int, int, str]] = []
    position = 0
    for chunk in chunks:
        for raw in split_sentences(chunk.text):
            position += 1
            sentence = _without_placeholders(raw)
            if sentence is None or len(sentence.split()) < 4 or not _language_ok(sentence, lang):
                continue
            if _AGENT_FACING.search(sentence) or sentence.endswith((":", "?")):  # lead-ins, FAQ questions
                continue
            if _names_other_remedy(sentence, ctx.may_offer):
                continue
            words = _terms(sentence)
            score = 2 * len(words & issue) + len(words & asked)
            if score >= 2:
                scored.append((score, position, sentence))
    best = sorted(scored, key=lambda item: (-item[0], item[1]))[:limit]
    return [sentence for _, _, sentence in sorted(best, key=lambda item: item[1])]


def _best_ticket(ctx: DraftContext) -> Evidence | None:
    # A ticket of another category describes steps for another problem, so only same-category
    # (or uncategorised) tickets qualify; the id breaks score ties so the choice is stable.
    close = [
        t for t in ctx.tickets
        if t.score >= RELEVANCE_THRESHOLD and t.reply and t.metadata.get("category") in (None, "", ctx.category)
        and not t.metadata.get("suspicious")  # flagged at ingest: text aimed at the assistant is never reused
    ]
    return min(close, key=lambda t: (-t.score, t.id)) if close else None


def compose_paragraphs(ctx: DraftContext) -> list[list[str]]:
    """The reply as paragraphs of sentences (joined with spaces within, blank lines between)."""
    lang = (ctx.language or "en").split("-")[0].lower()
    lang = lang if lang in LANGUAGES else "en"
    tone = ctx.tone if ctx.tone in ("friendly", "formal", "concise") else "friendly"
    business = ctx.business.get("name") or "Customer"
    timeframe = timeframe_phrase(ctx.timeframe.text, lang)
    ent = _entities(ctx)
    budget = {"short": 1, "medium": 3, "long": 5}.get(ctx.length, 3)
    if tone == "concise":
        budget = min(budget, 2)

    opening = [_phrase(lang, "thanks", tone).format(business=business), _acknowledgement(ctx, lang, ent)]
    # Questions get a lighter apology than problems: "sorry about this" would imply a failure.
    opening.append(_phrase(lang, "apology_soft" if ctx.category in QUESTION_CATEGORIES else "apology", tone))
    if ent.angry:
        opening.append(_phrase(lang, "empathy", tone))

    ticket = _best_ticket(ctx)
    # Chunks flagged at ingest as containing text aimed at the assistant are evidence to show, never text
    # to reuse: an instruction spread over several sentences would slip through a per-sentence filter.
    chunks = [k for k in ctx.knowledge if k.score >= RELEVANCE_THRESHOLD and not k.metadata.get("suspicious")][:2]
    paragraphs: list[list[str]] = [[_phrase(lang, "greeting", tone)], [s for s in opening if s]]
    if ticket is None and not chunks:
        # Nothing relevant: say so honestly instead of guessing.
        paragraphs.append([_phrase(lang, "no_evidence", tone).format(timeframe=timeframe)])
    else:
        steps = _ticket_steps(ticket, ctx, lang, ent, budget) if ticket else []
        fact_limit = (1 if steps else budget) if ctx.length != "long" else 2
        facts = _knowledge_facts(chunks, ctx, lang, fact_limit)
        corrects = any(_CORRECTION.search(f) for f in facts)
        body = ([_phrase(lang, "explain", tone)] if corrects else []) + facts + steps
        paragraphs.append(body or [_phrase(lang, "generic_step", tone)])
        closing = [_phrase(lang, "timeframe", tone).format(timeframe=timeframe)]
        offers = [REMEDY_WORDS[lang][o] for o in ("replacement", "exchange", "repair", "refund") if o in ctx.may_offer]
        if offers and ctx.category in REMEDY_CATEGORIES and not corrects:
            closing.append(_phrase(lang, "remedy", tone).format(offers=_phrase(lang, "or", tone).join(offers[:2])))
        paragraphs.append(closing)
    paragraphs.append([_phrase(lang, "invite", tone)])
    paragraphs.append([_phrase(lang, "signoff", tone).format(business=business)])
    return paragraphs


def compose_pieces(ctx: DraftContext) -> list[str]:
    """The reply as streaming pieces, one sentence each; ''.join(pieces) is the full reply."""
    paragraphs = compose_paragraphs(ctx)
    pieces: list[str] = []
    for i, paragraph in enumerate(paragraphs):
        for j, sentence in enumerate(paragraph):
            last_in_paragraph = j == len(paragraph) - 1
            tail = " " if not last_in_paragraph else ("\n\n" if i < len(paragraphs) - 1 else "")
            # The greeting stands on its own line, which paragraph breaks already give it.
            pieces.append(sentence + tail)
    return pieces


def compose_reply(ctx: DraftContext) -> str:
    """The full reply text for a context (deterministic: same context, same reply)."""
    return "".join(compose_pieces(ctx))


class ComposerBackend:
    """Deterministic, model-free drafting from the structured context (ignores the rendered prompts)."""

    name = "composer"
    model = "composer-v1 (no LLM)"
    is_llm = False

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings

    def generate(self, request: GenerationRequest) -> Iterator[str]:
        """Stream the reply sentence by sentence. `feedback` is ignored: the output is deterministic."""
        yield from compose_pieces(request.context)

