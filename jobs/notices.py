"""The notices jobs/ sends to the moderators itself (publishing outcomes), in Russian like the
bot's own strings (bot/texts.py); here because jobs/ never imports bot/. Placeholders use str.format."""
from __future__ import annotations

import errno
import math
from typing import Any

from corpus.db import is_locked
from jobs.patience import DatabaseBusy

# why something failed, said to the moderators (`reason`); the exception itself goes to the log
REASON_DATABASE_BUSY = "база данных занята (резервная копия или ночное обучение)"
REASON_DISK_FULL = "на диске бота кончилось место — освободите его (buhurt doctor покажет, сколько свободно)"
REASON_READ_ONLY = "боту нельзя писать в папку данных — дайте ему права на запись"
REASON_MEMORY = "не хватило памяти (видеокарты или оперативной)"
REASON_DAMAGED = ("база данных повреждена — остановите бота и восстановите последнюю резервную копию"
                  " (docs/operating.md: Backups)")
REASON_NO_ANSWER = "ответа по сети не было вовремя или связь прервалась"
REASON_OTHER = "ошибка в боте, подробности — в его журнале"

PUBLISH_REFUSED = "Мем #{id} не опубликован в {where}: {error}. Очередь сохранена, попробую снова по расписанию."
PUBLISH_IN_DOUBT = "Мем #{id} мог не дойти до {where} ({error}). Повторно не отправляю — проверьте канал."
PUBLISH_STOPLISTED = ("Мем #{id} не опубликован в {where}: в нём есть слово из стоп-листа ({fragment})."
                      " Он снят с очереди.")
PUBLISH_BROKEN_OFF = ("Мем #{id} мог не дойти до {where}: отправка прервалась из-за ошибки."
                      " Повторно не отправляю — проверьте канал.")
PUBLISH_INTERRUPTED = ("Мем #{id} мог не дойти до {where}: бот остановился во время отправки."
                       " Повторно не отправляю — проверьте канал.")
DATABASE_DAMAGED = ("База данных повреждена ({problem}). Публикации и ответы подписчикам могут не работать:"
                    " остановите бота и восстановите последнюю резервную копию (docs/operating.md: Backups).")

# alerts to the moderators' chat (jobs/alerts.py, jobs/publish.py): one line each, once per episode
ALERT_EMPTY_SLOT = "⏰ Слот публикации прошёл, а для {where} нет одобренных мемов."
ALERT_EMPTY_SLOT_HELD = ("⏰ Слот публикации прошёл, а для {where} одобренные мемы отложены:"
                         " ближайший выйдет не раньше {when} (/queue).")
ALERT_LOW_QUEUE = ("📉 Одобренных мемов хватает на слотов публикации: {slots}, а нужно хотя бы на {least}."
                   " Одобрите ещё черновики (/queue).")
ALERT_FAILING = "🚫 {where}: неудачных публикаций подряд — {count}. Проверьте права бота (buhurt doctor)."
DIGEST_RETRY = "🏆 Лучшее недели не ушло в {where}: {error}. Попробую ещё раз через {minutes} мин."
DIGEST_GIVEN_UP = "🏆 Лучшее недели не ушло в {where}: {error}. Попытки кончились: на этой неделе его там не будет."
ALERT_RETRAIN_FAILED = ("🧠 Ночное обучение не удалось: {error}. Бот пишет старой моделью;"
                        " следующей ночью попробую снова.")
ALERT_MODEL_FILE = ("🧠 Файл активной модели {version} не годится ({problem}); черновики пишет модель {using}."
                    " Верните файл или активируйте другую версию (buhurt doctor, buhurt models list).")
# the retrain alerts' {line} (`retrain_figures`): the two models' figures
RETRAIN_BPC = "Бит на символ (меньше — лучше): новая {candidate} — {candidate_bpc:.3f}"
RETRAIN_BPC_ACTIVE = ", старая {active} — {active_bpc:.3f}"
RETRAIN_PASS = " Проходят фильтр: новая — {candidate:.0%}"
RETRAIN_PASS_ACTIVE = ", старая — {active:.0%}"
# ALERT_MODEL_FILE's why (`model_file_problem`, from jobs.model_registry.registered_file_problem's English)
MODEL_FILE_MISSING = "файла нет"
MODEL_FILE_NOT_A_FILE = "это не файл"
MODEL_FILE_UNREADABLE = "файл не читается"
MODEL_FILE_REWRITTEN = "в файле другая версия: его переписали после установки"
ALERT_RETRAIN_SUPERSEDED = ("🧠 Ночное обучение: пока оно шло, активной сделали модель {active}. Новую модель {version}"
                            " сравнивали с {compared}, а не с ней, поэтому она не включена; черновики пишет {active}.")
ALERT_RETRAIN_KEPT = "🧠 Ночное обучение: новая модель не лучше, осталась старая. {line}"
ALERT_RETRAIN_AWAITS = ("🧠 Ночное обучение: новая модель {version} лучше старой. Она заменит старую, если её"
                        " черновики по оценкам в /rate будут читаться не хуже (нужно оценок: {ratings});"
                        " пока пишет старая. {line}")


def reason(exc: BaseException) -> str:
    """What `exc` means to a moderator, in Russian (REASON_*): never Python's names or English."""
    said = str(exc).lower()
    if "disk is full" in said or (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)):
        return REASON_DISK_FULL
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return REASON_NO_ANSWER
    if isinstance(exc, DatabaseBusy) or is_locked(exc):
        return REASON_DATABASE_BUSY
    if isinstance(exc, MemoryError) or "out of memory" in said:
        return REASON_MEMORY
    if "malformed" in said or "not a database" in said:
        return REASON_DAMAGED
    if isinstance(exc, PermissionError) or "readonly" in said or "read-only" in said:
        return REASON_READ_ONLY
    return REASON_OTHER


def model_file_problem(problem: str) -> str:
    """jobs.model_registry's why a model's file is unusable ("missing", "unreadable (...)", "version
    X, not V ...") in Russian, for ALERT_MODEL_FILE; the English one goes to the log."""
    if problem == "missing":
        return MODEL_FILE_MISSING
    if problem == "not a regular file":
        return MODEL_FILE_NOT_A_FILE
    if problem.startswith("unreadable"):
        return MODEL_FILE_UNREADABLE
    if problem.startswith("version "):
        return MODEL_FILE_REWRITTEN
    return problem


def retrain_figures(result: Any) -> str:
    """A retrain's figures (jobs.retrain.RetrainResult) for the moderators, in Russian: the held-out
    bits per character of the new and the old model, then their drafts' pass shares when measured;
    its English line (result.reason) goes to the log."""
    candidate_bpc, active_bpc = getattr(result, "candidate_bpc", None), getattr(result, "active_bpc", None)
    if candidate_bpc is None or not math.isfinite(candidate_bpc):
        return ""
    line = RETRAIN_BPC.format(candidate=getattr(result, "candidate_version", None) or "?", candidate_bpc=candidate_bpc)
    if active_bpc is not None and math.isfinite(active_bpc):
        line += RETRAIN_BPC_ACTIVE.format(active=getattr(result, "active_version", None) or "?", active_bpc=active_bpc)
    line += "."
    candidate_read, active_read = (getattr(result, "candidate_readability", None),
                                   getattr(result, "active_readability", None))
    if candidate_read is not None:
        line += RETRAIN_PASS.format(candidate=candidate_read)
        if active_read is not None:
            line += RETRAIN_PASS_ACTIVE.format(active=active_read)
        line += "."
    return line
