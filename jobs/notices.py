"""The notices jobs/ sends to the moderators itself (publishing outcomes), in Russian like the
bot's own strings (bot/texts.py); here because jobs/ never imports bot/. Placeholders use str.format."""
from __future__ import annotations

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
ALERT_LOW_QUEUE = "📉 В очереди на {slots} слот(ов) меньше {least}: одобрите ещё черновики (/queue)."
ALERT_FAILING = "🚫 {where}: неудачных публикаций подряд — {count}. Проверьте права бота (buhurt doctor)."
DIGEST_RETRY = "🏆 Лучшее недели не ушло в {where}: {error}. Попробую ещё раз через {minutes} мин."
DIGEST_GIVEN_UP = "🏆 Лучшее недели не ушло в {where}: {error}. Попытки кончились: на этой неделе его там не будет."
ALERT_RETRAIN_FAILED = "🧠 Ночное обучение не удалось ({error}); бот пишет старой моделью."
ALERT_MODEL_FILE = ("🧠 Файл активной модели {version} не годится ({problem}); черновики пишет модель {using}."
                    " Верните файл или активируйте другую версию (buhurt doctor, buhurt models list).")
ALERT_RETRAIN_KEPT = "🧠 Ночное обучение: новая модель не лучше, осталась старая. {line}"
ALERT_RETRAIN_AWAITS = ("🧠 Ночное обучение: новая модель {version} лучше старой; она заменит её, если после {ratings}"
                        " оценок в /rate её черновики будут читаться не хуже (пока пишет старая). {line}")
